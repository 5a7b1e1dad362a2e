//! ZeroMQ socket options that the `zmq` crate does not wrap, set through
//! libzmq's C API, and the few C library calls the standard library lacks
//! (`malloc_trim`, `mallopt`, `signal`). This is the only crate of Dafka
//! with unsafe code: one small, checked call each.

use std::os::raw::{c_int, c_void};

/// Turns `ZMQ_XPUB_MANUAL` on for an XPUB socket: a subscription a peer
/// sends is no longer applied by libzmq but handed to the application,
/// which applies it by calling `set_subscribe` (or `set_unsubscribe`) on the
/// socket right after receiving it. That lets a node refuse subscriptions
/// the protocol never uses, which would otherwise each cost memory in the
/// socket's subscription trie for as long as the peer stays connected.
pub fn set_xpub_manual(sock: &mut zmq::Socket, on: bool) -> Result<(), zmq::Error> {
    set_int(sock, zmq_sys::ZMQ_XPUB_MANUAL as c_int, c_int::from(on))
}

/// Hands memory the C allocator holds but no longer uses back to the
/// operating system (glibc's `malloc_trim`). libzmq allocates with malloc:
/// when a peer that sent many subscriptions leaves, libzmq frees its
/// subscription trie, but glibc keeps the pages, so the process would stay
/// as large as the flood made it. A no-op where the C library is not glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions: it only walks glibc's own
    // free lists, under glibc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How much free memory at the top of a heap glibc's allocator keeps
/// before it hands pages back to the kernel (`M_TRIM_THRESHOLD`; glibc's
/// own default is 128 KiB).
pub const C_HEAP_KEEP: usize = 32 << 20;

/// Allocations at least this large get pages of their own from the kernel
/// (`M_MMAP_THRESHOLD`). Setting the trim threshold turns off glibc's own
/// adjustment of this one, which otherwise rises to the largest block
/// freed so far; left at its initial 128 KiB, every buffer RocksDB takes
/// to build a table file (1 MiB) would be mapped, faulted in and unmapped
/// again each time.
pub const C_HEAP_MMAP_FROM: usize = 8 << 20;

/// Makes glibc's allocator, which libzmq uses for every message it
/// receives, keep up to [`C_HEAP_KEEP`] of freed memory for reuse instead
/// of returning it at once. A node receiving 64 KiB records frees a
/// message's memory as soon as the record is stored or consumed; with
/// glibc's default the heap shrank and grew again around each batch, and
/// the kernel mapped and zeroed fresh pages for the next messages, about a
/// fifth of ZeroMQ's I/O thread time. [`release_free_memory`] still hands
/// everything back when asked. A no-op where the C library is not glibc.
pub fn keep_freed_c_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let keep = c_int::try_from(C_HEAP_KEEP).unwrap_or(c_int::MAX);
        let mmap_from = c_int::try_from(C_HEAP_MMAP_FROM).unwrap_or(c_int::MAX);
        // SAFETY: mallopt only sets tuning values of glibc's allocator,
        // under its own lock; it has no other preconditions.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_from);
            libc::mallopt(libc::M_TRIM_THRESHOLD, keep);
        }
    }
}

/// The CURVE public key (Z85) that belongs to a secret key (Z85), so a
/// node needs only its secret key file. `None` when `secret` is not a
/// 40-character Z85 key or libzmq has no CURVE.
pub fn curve_public(secret: &str) -> Option<String> {
    if secret.len() != 40 {
        return None;
    }
    let secret = std::ffi::CString::new(secret).ok()?;
    let mut public = [0u8; 41];
    // SAFETY: zmq_curve_public reads 41 bytes (40 characters and the NUL)
    // from `secret`, a NUL-terminated string of exactly that length, and
    // writes 41 bytes (40 characters and a NUL) into `public`, which has
    // room for them; both live on our stack across the call.
    let rc = unsafe { zmq_curve_public(public.as_mut_ptr().cast(), secret.as_ptr()) };
    if rc != 0 {
        return None;
    }
    String::from_utf8(public[..40].to_vec()).ok()
}

/// Reload requests: bumped by [`request_reload`] and by SIGHUP once
/// [`reload_on_sighup`] is installed; readers compare it with what they saw.
static RELOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Asks whatever watches [`reloads`] to read its files again.
pub fn request_reload() {
    RELOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How many reloads were requested so far.
pub fn reloads() -> u64 {
    RELOADS.load(std::sync::atomic::Ordering::Relaxed)
}

extern "C" fn on_sighup(_: c_int) {
    // One atomic add: safe in a signal handler.
    request_reload();
}

/// Makes SIGHUP request a reload (as daemons do) instead of ending the
/// process. Install it after any handler that also claims SIGHUP.
pub fn reload_on_sighup() -> Result<(), std::io::Error> {
    // SAFETY: `on_sighup` is an `extern "C" fn(c_int)`, the handler type
    // signal(2) expects, and only does an atomic add, which is
    // async-signal-safe. signal() has no other preconditions.
    let old = unsafe { libc::signal(libc::SIGHUP, on_sighup as *const () as libc::sighandler_t) };
    if old == libc::SIG_ERR {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

// zmq-sys binds this function but does not export it; it is in the same
// libzmq (4.2 and later) that zmq-sys links.
extern "C" {
    fn zmq_curve_public(
        public: *mut std::os::raw::c_char,
        secret: *const std::os::raw::c_char,
    ) -> c_int;
}

fn set_int(sock: &mut zmq::Socket, option: c_int, value: c_int) -> Result<(), zmq::Error> {
    // SAFETY: `sock` is a live socket for as long as the borrow lasts (the
    // `zmq::Socket` owns it and closes it only on drop); `value` is a c_int
    // on our stack and we pass its exact size, which is what libzmq expects
    // for integer options. libzmq copies the value before returning.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            sock.as_mut_ptr(),
            option,
            (&value as *const c_int).cast::<c_void>(),
            std::mem::size_of::<c_int>(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: zmq_errno only reads libzmq's thread-local error number.
    Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_xpub_hands_subscriptions_over_and_applies_only_what_it_is_told() {
        let ctx = zmq::Context::new();
        let mut xpub = ctx.socket(zmq::XPUB).expect("xpub");
        set_xpub_manual(&mut xpub, true).expect("manual");
        xpub.bind("inproc://manual").expect("bind");
        let sub = ctx.socket(zmq::SUB).expect("sub");
        sub.connect("inproc://manual").expect("connect");
        sub.set_subscribe(b"yes").expect("sub");
        sub.set_subscribe(b"no").expect("sub");
        for want in [&b"\x01yes"[..], b"\x01no"] {
            let got = xpub.recv_bytes(0).expect("subscription");
            assert_eq!(got, want);
            if got == b"\x01yes" {
                xpub.set_subscribe(b"yes").expect("apply");
            }
        }
        xpub.send(&b"no: dropped"[..], 0).expect("send");
        xpub.send(&b"yes: delivered"[..], 0).expect("send");
        let got = sub.recv_bytes(0).expect("recv");
        assert_eq!(got, b"yes: delivered");
    }

    #[test]
    fn a_public_key_is_derived_from_its_secret() {
        let pair = zmq::CurveKeyPair::new().expect("CURVE");
        let z85 = |k: &[u8; 32]| zmq::z85_encode(k).expect("z85");
        assert_eq!(
            curve_public(&z85(&pair.secret_key)),
            Some(z85(&pair.public_key))
        );
        assert_eq!(curve_public("short"), None);
    }

    #[test]
    fn a_socket_that_is_not_xpub_says_so() {
        let ctx = zmq::Context::new();
        let mut sub = ctx.socket(zmq::SUB).expect("sub");
        assert_eq!(set_xpub_manual(&mut sub, true), Err(zmq::Error::EINVAL));
    }
}
