//! (emulator: being built)
