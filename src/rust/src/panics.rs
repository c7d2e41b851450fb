//! Rust panics are told to R, not printed.
//!
//! Rust's default panic hook writes "thread ... panicked at ..." (and a
//! backtrace under `RUST_BACKTRACE`) to stderr before the panic unwinds to
//! `error::guard`, which then raises it as a `mori_error_internal`: a user
//! saw both. The hook installed at load ([`install`]) writes nothing; it
//! records the message and where the panic happened, and `guard` puts them
//! in the R error ([`take`]). The hook is this library's own: each R
//! package built with Rust links its own standard library, so other
//! packages' panics are untouched.

use std::panic::{self, PanicHookInfo};
use std::sync::{Mutex, Once};

/// Messages recorded since `guard` last took them: a panic on another
/// thread (the summarising thread of a share) and then the one on R's
/// thread that reports it, at most a few.
static RECORDED: Mutex<Vec<String>> = Mutex::new(Vec::new());
const KEPT: usize = 4;

/// Replaces the default hook with the recording one, once per process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| panic::set_hook(Box::new(record)));
}

/// A panic's message: its payload when that is text (`panic!` with a
/// literal gives `&str`, with arguments `String`), else "unknown".
pub fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into())
}

/// The hook: the message and its place, kept for `guard`. It must not
/// panic itself (that would abort): it never waits for the lock, and gives
/// up on a poisoned one.
fn record(info: &PanicHookInfo<'_>) {
    let what = payload_text(info.payload());
    let text = match info.location() {
        Some(at) => format!("{what} (at {}:{})", at.file(), at.line()),
        None => what,
    };
    if let Ok(mut list) = RECORDED.try_lock() {
        if list.len() < KEPT {
            list.push(text);
        }
    }
}

/// What the hook recorded since the last call, oldest first, joined with
/// "; " (None if nothing: a panic the hook did not see).
pub fn take() -> Option<String> {
    let mut list = RECORDED.try_lock().ok()?;
    if list.is_empty() {
        return None;
    }
    let text = list.join("; ");
    list.clear();
    Some(text)
}
