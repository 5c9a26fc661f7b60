//! The captured wohome write exchanges, shared by the known-answer tests and the emulator's
//! replay test. Provenance and the key: see `kat_write.rs`.

/// The wohome key of the captures (see the module documentation).
pub const CAPTURE_KEY: &str = "c3f0362b-0515-49";

#[derive(Debug)]
pub struct Capture {
    pub op: &'static str,
    /// "personal", "family", or "none" (space-less calls).
    pub space: &'static str,
    /// The request envelope, verbatim (compact).
    pub request: &'static str,
    /// Its `param`, decrypted: the exact text the web client encrypted.
    pub param: &'static str,
    /// The response envelope, verbatim (compact).
    pub response: &'static str,
    /// Its `DATA`, decrypted (`""` for the mutations' empty DATA).
    pub data: &'static str,
}

pub const CAPTURES: &[Capture] = &[
    Capture {
        op: "CreateDirectory",
        space: "family",
        request: r#"{"header":{"key":"CreateDirectory","resTime":1686146328811,"reqSeq":147094,"channel":"wohome","version":"","sign":"30ff0c4025a649750e8f75dbbb60297d"},"body":{"param":"RUHfQlrlkoNf8oVK8ofLwSILlW0vUpVHDISNlKLj6qV/q0p/OF4xX+Mv4peyNHLVQ/V8UTHHzr+kBekurHSQEooKIr3hSjUFVXNJ/LGFEL+WaBSJ1uMHU8TCEpisNOqfwPnWBRhG8lLF2OYFh6roF2gsM4vt7Ilk4fulke76SGk=","secret":true}}"#,
        param: r#"{"spaceType":"1","familyId":"9263097","parentDirectoryId":"0","directoryName":"test_mkdir","clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"22cf6f29acc6469083b1b197e81369a9","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":"olqWpzdKgTqTy0y/tsPiVNws2eDkiWDEfwzppQBNcVbmzdAFJFV3BqmGImrSxuEm"}}"#,
        data: r#"{"id":"ab8147dba859439abef9edec0987341b"}"#,
    },
    Capture {
        op: "RenameFileOrDirectory",
        space: "family",
        request: r#"{"header":{"key":"RenameFileOrDirectory","resTime":1686146447017,"reqSeq":107355,"channel":"wohome","version":"","sign":"6c7130af16e0a0820fee1e369cc29d52"},"body":{"param":"RUHfQlrlkoNf8oVK8ofLwUfYXU/GWFZguMSyGssZA0OmY4Zf06frWmYn1UEOrTKDCNAyrEc28cCVFux/fzutFZayJBouD2gpS30/+5V3jg/+G1zkVBvBdPtzikUd5Dg90ZD3B9Q1qW8GkAmxCu+EAuN4QIZvBry5tyFJ3SqW4LMfLxotvoRjk2cjxHEYeIz9t+zK4AFzNI6yeDc58QXrMg==","secret":true}}"#,
        param: r#"{"spaceType":"1","type":0,"fileType":"0","id":"ab8147dba859439abef9edec0987341b","name":"rename_newname","familyId":"9263097","clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"3403664275654279b3df6f91964452f0","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":""}}"#,
        data: r#""#,
    },
    Capture {
        op: "MoveFile",
        space: "family",
        request: r#"{"header":{"key":"MoveFile","resTime":1686146616560,"reqSeq":141296,"channel":"wohome","version":"","sign":"ec4208bcbeaaccd09f4693293d523345"},"body":{"param":"ihM2idvmmh1dINmyiXmuLaM2YtQjHZsjKKxq4MJFwmw/ziVHmnVinnW4EZ/OUDC5ljxtT0ryFSxFGO1qpfXidznvEFR11vkTE6uy4W44LGawiqS1oFAQUWzuP1YtBbKORg+9ZJfgeB/22pKSnICTx1nWI5yaqKCXxaURHAEeiUNWKcE/8eXipMdzjiiMIKESaztKCIIM3Z3JQwxMqqe9m6MwzAA+MDEKj49qfp8RS35WjHu6mCEm1WoUSOnXfmz+ku5iZYULKXfET5NIbcgw9sfomx21mEP+r4DthHnw7HzbELE298hexyG2lv5zebID","secret":true}}"#,
        param: r#"{"targetDirId":"37135bfb5178467b857129a00931e24a","sourceType":"1","targetType":"1","dirList":["ab8147dba859439abef9edec0987341b"],"fileList":[],"familyId":"9263097","fromFamilyId":"9263097","secret":false,"clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"2bb8990c816a4e16a829b699f5895c3a","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":""}}"#,
        data: r#""#,
    },
    Capture {
        op: "CopyFile",
        space: "family",
        request: r#"{"header":{"key":"CopyFile","resTime":1686146728802,"reqSeq":159201,"channel":"wohome","version":"","sign":"00f0c43ff6bb93b733a3d8b7d18650c3"},"body":{"param":"ihM2idvmmh1dINmyiXmuLXN6+44xAmOmta/HiyiVNrO11HEyVshG05dnDvJnDvczAbJq12bndqNlQ/cPEQyeV5FG4+pG2Tdn1HSx0IovXG4pbHXbdgdDBuhpi03Dzwa6p6qvHE0Y9dIRq/dhmrlnTTicT6XYTIdCWJ9GKPB47lw2wxlQaSUytVL4BzCXN7T9By0Ijw9Su37bZtNwryEjuZi4WKJHsyrk2f6wCynjg/i99DpDwdFh1BBq3+ukHomIp2fN8M8gVTeRjdIZ7lA3xQ==","secret":true}}"#,
        param: r#"{"targetDirId":"ab8147dba859439abef9edec0987341b","sourceType":"1","targetType":"1","dirList":["b8aa81b8d90c42e4b9e4109d9c8d2de5"],"fileList":[],"familyId":"9263097","secret":false,"clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"ab7cf18a850c4da4a54af55f959e9d22","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":""}}"#,
        data: r#""#,
    },
    Capture {
        op: "DeleteFile",
        space: "family",
        request: r#"{"header":{"key":"DeleteFile","resTime":1686146818168,"reqSeq":147076,"channel":"wohome","version":"","sign":"9fef701045d20ffe828626c1dee5cb85"},"body":{"param":"RUHfQlrlkoNf8oVK8ofLwV+mAYTdNZM63Z+XVO4+FnzTev0VfrIBkVNCFh/bUyXvdYH/cQr8xUkGCK8d2ah5KN6AMTFrIjbH4ZsWi2pNshLuvrZGZejcfKWc5o4GVTd2nwlyy03ZG71+pBZQnrzuGxrxa+j/DXl2h+/REMNz3AY=","secret":true}}"#,
        param: r#"{"spaceType":"1","vipLevel":"0","dirList":["ab8147dba859439abef9edec0987341b"],"fileList":[],"clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"7c063be9dc154854b55747e81a567573","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":""}}"#,
        data: r#""#,
    },
    Capture {
        op: "CreateDirectory",
        space: "personal",
        request: r#"{"header":{"key":"CreateDirectory","resTime":1686143325362,"reqSeq":172039,"channel":"wohome","version":"","sign":"160309e7e8636b23e361f5c39496958c"},"body":{"param":"GtmyJSC9Dk/J6UPJgyxFwET/2LUubXJ2I6ecBemhCiMIyz0jsJFp8eINaJ219ILdNG2/Y0U6pSn/OuNkk1N75cdvCqooXiHqqSmgndpu3JriqYj3u6wdJOG5AyEUeP4niH+eSGf8yyGQzh+s0tPRre45oCiMVzV8WR5DOQTO9SdIC1dJJZnX4liTN4J02pK3P/O2j/fvhuBlR3TKOOpDgA==","secret":true}}"#,
        param: r#"{"spaceType":"0","familyId":"9263097","parentDirectoryId":"b2e9b430ed02493782065106291b0308","directoryName":"inner_folder","clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"bb7a573aef8e4c7185754593cb6d7682","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":"CnnZck3ubj44rwSM3AM/v9zjE3ysakdbmIKE/VaoNe/rnV62Yhda97WP0JQM5174"}}"#,
        data: r#"{"id":"1bb8cfb12d7f4d4eaac1b3a5293a256f"}"#,
    },
    Capture {
        op: "RenameFileOrDirectory",
        space: "personal",
        request: r#"{"header":{"key":"RenameFileOrDirectory","resTime":1686144095914,"reqSeq":119050,"channel":"wohome","version":"","sign":"15b981684108b2a927d6c268775d612a"},"body":{"param":"GtmyJSC9Dk/J6UPJgyxFwGp9iZTS3ITlNospQy+ACXq+x9bYwe5f2MKIoduy27GePOHiZcXoWU38TUoIY726fhnp4tREw48TNnjh9ltV8w+gNe1lcQtZK2ffLata84GVGf193PA2F76eyDXnT77S79cqXqmUZw+aebXAUBQ8eeo=","secret":true}}"#,
        param: r#"{"spaceType":"0","type":1,"fileType":"1","id":"78ee3248f33941b4815199f1b6daaab7","name":"new_name.png","clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"e3d45f94fc694d94b08aacca109e1352","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":""}}"#,
        data: r#""#,
    },
    Capture {
        op: "MoveFile",
        space: "personal",
        request: r#"{"header":{"key":"MoveFile","resTime":1686144313361,"reqSeq":150760,"channel":"wohome","version":"","sign":"0585b1b888e64355279f605a2cd1d0aa"},"body":{"param":"ihM2idvmmh1dINmyiXmuLf0cruAdowEkbijMDGjuAbDKdwtrPqs4DXXyrAZn76zKhwpqWdJYnXxDEJzf9v/suwR0B1d6OJWUDhbhn/N9yrQX5iH3TOlkZnrOvQNo60M1KZe7/4wllIT8hfjBGTojHvw+l+FTIzQYjLf/OOlhxgKOxUzv2Rw2TQGfroVfeVHcS9ronpbSi4apmasygAPJroBLNKWm84rN5GBjwbdBZFiK6YiuUxlMXNZH6bCxq+Ex","secret":true}}"#,
        param: r#"{"targetDirId":"57ad13bb15cf4e6e94799c330d06e9f6","sourceType":"0","targetType":"0","dirList":[],"fileList":["78ee3248f33941b4815199f1b6daaab7"],"secret":false,"clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"791fae44a0814aa3ae10e59094bfbbad","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":""}}"#,
        data: r#""#,
    },
    Capture {
        op: "CopyFile",
        space: "personal",
        request: r#"{"header":{"key":"CopyFile","resTime":1686144417113,"reqSeq":155691,"channel":"wohome","version":"","sign":"d1f88b0de379c41bb82b971df754c025"},"body":{"param":"ihM2idvmmh1dINmyiXmuLXf0xChFSz2aX4ZYl/+UFTdb6Y8/M2mKYKo8OWRWAVotAPsIwR0BnoRXCdkO/7HiZOb171dLHHbaCcSyiskFrjxrk8U/w3BxawvwppCLtnO70mZKzw7adrqRnOMWwl2vhaRlXJjcslaMSuyXypUZNvdIDyCKROIOkNo6zUW+zqJnK9tk6KuvhVuX6jJxshBpMWv8Ly0gSUGB2310m76bhSsE1K79wRQGNliNpuYISTiISaCsIwik6X34vYntPAS8Qw==","secret":true}}"#,
        param: r#"{"targetDirId":"8fa10be30f5e41b49a6abb516f5c7649","sourceType":"0","targetType":"0","dirList":[],"fileList":["78ee3248f33941b4815199f1b6daaab7"],"familyId":"9263097","secret":false,"clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"396bca037ea04e8abe323237127132cc","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":""}}"#,
        data: r#""#,
    },
    Capture {
        op: "DeleteFile",
        space: "personal",
        request: r#"{"header":{"key":"DeleteFile","resTime":1686144630496,"reqSeq":124076,"channel":"wohome","version":"","sign":"5387bfadbfdd13f56a1500c5482f0160"},"body":{"param":"GtmyJSC9Dk/J6UPJgyxFwMkgZZ7g5CkKAWC7kMnqnuOlfmc9GlKAtW0IDhM9/rTRwlUBuV1Ip72yNUVG0wbQ+kxL64qNF0z68IvaiCTf9X2z1QIkKtANyfa3VmzDEWJ11FDKZpsgEvU54aUjfOtyDbg1E9r1kZoR+LNuNVQ1/mI=","secret":true}}"#,
        param: r#"{"spaceType":"0","vipLevel":"0","dirList":["70431a1e535b405f956b6e451db9255d"],"fileList":[],"clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"f4872ff17b4149668b702c8ade591f29","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":""}}"#,
        data: r#""#,
    },
    Capture {
        op: "EmptyRecycleData",
        space: "personal",
        request: r#"{"header":{"key":"EmptyRecycleData","resTime":1686144735505,"reqSeq":180247,"channel":"wohome","version":"","sign":"9d599a6465923f91fb14965a2a031150"},"body":{"param":"/V0Cb8bUEmLHNGFHDLHFgyE/yfwzzLO7mIejUNl3qjw=","secret":true}}"#,
        param: r#"{"clientId":"1001000021"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"aebd244d7a0e4ec28a1cfecf42209c4e","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":""}}"#,
        data: r#""#,
    },
    Capture {
        op: "GetZoneInfo",
        space: "none",
        request: r#"{"header":{"key":"GetZoneInfo","resTime":1686118434325,"reqSeq":170890,"channel":"wohome","version":"","sign":"326b96ee368b30e4e9cf7bd31e305880"},"body":{"param":"nanNmnX3m4Anrp1DjXylISnti/HBwPrVFTjINwpyf1w=","key":true}}"#,
        param: r#"{"appId":"10000001"}"#,
        response: r#"{"STATUS":"200","MSG":"服务调用成功！","LOGID":"983cfcaf29e44229ad3c75bd15b16229","RSP":{"RSP_CODE":"0000","RSP_DESC":"成功","DATA":"Nm2QfrArNNXyA2JPvLzW7p6qTqISUTlUdcZCH81YaZ6N4Fy8ftbKSv6ujiSx4NUP"}}"#,
        data: r#"{"url":"https://gxupload.pan.wo.cn:8443"}"#,
    },
];
