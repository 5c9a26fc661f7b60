//! The compact encoding of one stats flush, as a `stats_journal` row holds it.
//!
//! Writing a flush as one row per touched token cost a B-tree update of a wide `tokens` row
//! and a `token_minutes` upsert per token per second (with 100,000 tokens under round-robin:
//! ~50,000 row writes a second, a third of the manager's CPU). A flush is now one BLOB: each
//! token's id, its counter snapshot and its minute deltas, with varint integers and the pool
//! names listed once. The `fold` module later folds many such records into the rows at once.
//!
//! Layout (version 1): `1`, the base time (the latest `last_used`), the base minute (the
//! earliest minute), pool count, pools (length + UTF-8), entry count, entries. An entry: id
//! (length + UTF-8), a flags byte, the counters when flag bit 0 is set (seven class counts,
//! `times_cooled`, then `last_used` as base time − value, `last_error`, `last_error_at`, the
//! latency EWMA, each only when its flag bit 1–4 is set; the latency as `f32` when bit 5 says
//! that is exact, else `f64`), then the minute count and minutes (pool index, minute − base
//! minute, requests, failures). Times as offsets from a base make them one to three bytes.
//! Decoding never panics: a damaged body is an error naming what is wrong.

use crate::{StatsBatch, TokenCounters};
use std::collections::HashMap;

const VERSION: u8 = 1;
const HAS_COUNTERS: u8 = 1;
const LAST_USED: u8 = 1 << 1;
const LAST_ERROR: u8 = 1 << 2;
const LAST_ERROR_AT: u8 = 1 << 3;
const LATENCY: u8 = 1 << 4;
const LATENCY_F32: u8 = 1 << 5;

/// One token's part of a record, as [`decode`] hands it to its visitor.
pub(crate) struct Entry<'a> {
    pub id: &'a str,
    pub counters: Option<TokenCounters>,
    /// (index into the record's pools, minute, requests, failures).
    pub minutes: &'a [(usize, u64, u32, u32)],
}

/// Encodes a batch: one entry per token, its minutes grouped with it.
///
/// The flusher lists minutes in the order of its counters, so they are matched by walking both
/// lists (no hashing per token); minutes out of that order are matched through a map.
pub(crate) fn encode(batch: &StatsBatch) -> Vec<u8> {
    let mins = &batch.minutes;
    // Per entry: id, counters, the range of `mins` walked onto it.
    let mut entries: Vec<(&str, Option<&TokenCounters>, std::ops::Range<usize>)> =
        Vec::with_capacity(batch.counters.len());
    let mut j = 0;
    for (id, c) in &batch.counters {
        let start = j;
        while j < mins.len() && mins[j].token_id.as_str() == id.as_str() {
            j += 1;
        }
        entries.push((id.as_str(), Some(c), start..j));
    }
    // Minutes the walk did not place, by entry (a new entry for an id without counters).
    let mut extra: HashMap<usize, Vec<usize>> = HashMap::new();
    let placed: usize = entries.iter().map(|e| e.2.len()).sum();
    if placed < mins.len() {
        let mut walked = vec![false; mins.len()];
        for e in &entries {
            walked[e.2.clone()].fill(true);
        }
        let mut at: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            at.insert(e.0, i);
        }
        for (k, m) in mins.iter().enumerate().filter(|(k, _)| !walked[*k]) {
            let i = *at.entry(m.token_id.as_str()).or_insert_with(|| {
                entries.push((m.token_id.as_str(), None, 0..0));
                entries.len() - 1
            });
            extra.entry(i).or_default().push(k);
        }
    }
    // Pool index of every minute; the header lists each pool once.
    let mut pools: Vec<&str> = Vec::new();
    let mut pool_idx: Vec<usize> = Vec::with_capacity(mins.len());
    for m in mins {
        let i = match pool_idx.last() {
            Some(&i) if pools[i] == m.pool => i,
            _ => match pools.iter().position(|p| *p == m.pool) {
                Some(i) => i,
                None => {
                    pools.push(&m.pool);
                    pools.len() - 1
                }
            },
        };
        pool_idx.push(i);
    }
    let base_ms = batch
        .counters
        .iter()
        .filter_map(|(_, c)| c.last_used)
        .max()
        .unwrap_or(0);
    let base_minute = mins.iter().map(|m| m.minute).min().unwrap_or(0);
    let mut out = header(base_ms, base_minute, &pools, entries.len());
    for (i, (id, counters, range)) in entries.iter().enumerate() {
        let more = extra.get(&i).map_or(&[][..], Vec::as_slice);
        let minutes = range.clone().chain(more.iter().copied()).map(|k| {
            let m = &mins[k];
            (pool_idx[k], m.minute, m.requests, m.failures)
        });
        let n = range.len() + more.len();
        put_entry(
            &mut out,
            id,
            *counters,
            (n, minutes),
            (base_ms, base_minute),
        );
    }
    out
}

/// Encodes merged entries — each token's counters and its minutes as (minute, index into
/// `pools`, requests, failures) — as one record, the way [`encode`] writes a flush (the
/// compaction's record, written without building a [`StatsBatch`] first).
pub(crate) fn encode_entries<'a, I>(pools: &[&str], entries: I, len: usize) -> Vec<u8>
where
    I: Iterator<
            Item = (
                &'a str,
                Option<&'a TokenCounters>,
                &'a [(u64, u32, u32, u32)],
            ),
        > + Clone,
{
    let base_ms = entries
        .clone()
        .filter_map(|(_, c, _)| c.and_then(|c| c.last_used))
        .max()
        .unwrap_or(0);
    let base_minute = entries
        .clone()
        .flat_map(|(_, _, m)| m.iter().map(|x| x.0))
        .min()
        .unwrap_or(0);
    let mut out = header(base_ms, base_minute, pools, len);
    for (id, counters, minutes) in entries {
        let n = minutes.len();
        let minutes = minutes.iter().map(|&(m, p, r, f)| (p as usize, m, r, f));
        put_entry(&mut out, id, counters, (n, minutes), (base_ms, base_minute));
    }
    out
}

/// The version, the base time and minute, the pools and the entry count.
fn header(base_ms: u64, base_minute: u64, pools: &[&str], entries: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + entries * 40);
    out.push(VERSION);
    put(&mut out, base_ms);
    put(&mut out, base_minute);
    put(&mut out, pools.len() as u64);
    for p in pools {
        put_str(&mut out, p);
    }
    put(&mut out, entries as u64);
    out
}

/// One entry: id, counters, the count of minutes and the minutes as (pool index, minute,
/// requests, failures); times as offsets from `(base_ms, base_minute)`.
fn put_entry(
    out: &mut Vec<u8>,
    id: &str,
    counters: Option<&TokenCounters>,
    (count, minutes): (usize, impl Iterator<Item = (usize, u64, u32, u32)>),
    (base_ms, base_minute): (u64, u64),
) {
    put_str(out, id);
    match counters {
        Some(c) => put_counters(out, c, base_ms),
        None => out.push(0),
    }
    put(out, count as u64);
    for (pool, minute, requests, failures) in minutes {
        put(out, pool as u64);
        put(out, minute - base_minute);
        put(out, u64::from(requests));
        put(out, u64::from(failures));
    }
}

fn put_counters(out: &mut Vec<u8>, c: &TokenCounters, base_ms: u64) {
    let latency_f32 = c
        .latency_ewma_ms
        .is_some_and(|v| f64::from(v as f32).to_bits() == v.to_bits());
    let flags = HAS_COUNTERS
        | if c.last_used.is_some() { LAST_USED } else { 0 }
        | if c.last_error.is_some() {
            LAST_ERROR
        } else {
            0
        }
        | if c.last_error_at.is_some() {
            LAST_ERROR_AT
        } else {
            0
        }
        | if c.latency_ewma_ms.is_some() {
            LATENCY
        } else {
            0
        }
        | if latency_f32 { LATENCY_F32 } else { 0 };
    out.push(flags);
    for v in c.by_class().into_iter().chain([u64::from(c.times_cooled)]) {
        put(out, v);
    }
    if let Some(v) = c.last_used {
        put(out, base_ms - v);
    }
    if let Some(e) = &c.last_error {
        put_str(out, e);
    }
    if let Some(v) = c.last_error_at {
        put(out, v);
    }
    match c.latency_ewma_ms {
        Some(v) if latency_f32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
        Some(v) => out.extend_from_slice(&v.to_le_bytes()),
        None => {}
    }
}

/// Decodes a record, calling `visit` with the record's pools and each entry in order.
pub(crate) fn decode<F>(body: &[u8], mut visit: F) -> Result<(), String>
where
    F: FnMut(&[&str], Entry<'_>),
{
    let mut r = Reader { buf: body, pos: 0 };
    let version = r.byte()?;
    if version != VERSION {
        return Err(format!("unknown stats record version {version}"));
    }
    let base_ms = r.varint()?;
    let base_minute = r.varint()?;
    let npools = r.len()?;
    let mut pools = Vec::with_capacity(npools);
    for _ in 0..npools {
        pools.push(r.str()?);
    }
    let mut minutes = Vec::new();
    for _ in 0..r.len()? {
        let id = r.str()?;
        let flags = r.byte()?;
        let counters = if flags & HAS_COUNTERS != 0 {
            Some(r.counters(flags, base_ms)?)
        } else {
            None
        };
        minutes.clear();
        for _ in 0..r.len()? {
            let pool = r.len()?;
            if pool >= pools.len() {
                return Err(format!(
                    "minute of {id:?} names pool #{pool} of {}",
                    pools.len()
                ));
            }
            let minute = base_minute
                .checked_add(r.varint()?)
                .ok_or("minute beyond 64 bits")?;
            minutes.push((pool, minute, r.u32()?, r.u32()?));
        }
        visit(
            &pools,
            Entry {
                id,
                counters,
                minutes: &minutes,
            },
        );
    }
    if r.pos != body.len() {
        return Err(format!("{} bytes after the last entry", body.len() - r.pos));
    }
    Ok(())
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.buf.get(self.pos).ok_or("record ends early")?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("integer longer than 64 bits".into())
    }

    fn u32(&mut self) -> Result<u32, String> {
        u32::try_from(self.varint()?).map_err(|_| "count beyond 32 bits".to_string())
    }

    /// A length or index: must fit in what is left of the record.
    fn len(&mut self) -> Result<usize, String> {
        let v = self.varint()?;
        usize::try_from(v)
            .ok()
            .filter(|&n| n <= self.buf.len())
            .ok_or_else(|| format!("length {v} beyond the record"))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or("record ends early")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let n = self.len()?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| "text is not UTF-8".to_string())
    }

    fn counters(&mut self, flags: u8, base_ms: u64) -> Result<TokenCounters, String> {
        let mut n = [0u64; 8];
        for v in &mut n {
            *v = self.varint()?;
        }
        let opt = |r: &mut Self, bit: u8| -> Result<Option<u64>, String> {
            if flags & bit != 0 {
                r.varint().map(Some)
            } else {
                Ok(None)
            }
        };
        let last_used = match opt(self, LAST_USED)? {
            Some(d) => Some(base_ms.checked_sub(d).ok_or("last_used before 1970")?),
            None => None,
        };
        let last_error = if flags & LAST_ERROR != 0 {
            Some(self.str()?.to_string())
        } else {
            None
        };
        let last_error_at = opt(self, LAST_ERROR_AT)?;
        let latency_ewma_ms = match (flags & LATENCY != 0, flags & LATENCY_F32 != 0) {
            (false, _) => None,
            (true, true) => Some(f64::from(f32::from_le_bytes(
                self.bytes(4)?.try_into().map_err(|_| "bad latency")?,
            ))),
            (true, false) => Some(f64::from_le_bytes(
                self.bytes(8)?.try_into().map_err(|_| "bad latency")?,
            )),
        };
        Ok(TokenCounters {
            success: n[0],
            auth: n[1],
            rate_limited: n[2],
            quota_exhausted: n[3],
            transient: n[4],
            client_error: n[5],
            unknown: n[6],
            times_cooled: u32::try_from(n[7]).map_err(|_| "times_cooled beyond 32 bits")?,
            last_used,
            last_error,
            last_error_at,
            latency_ewma_ms,
        })
    }
}

#[cfg(test)]
mod tests;
