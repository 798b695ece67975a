//! Untrusted bytes as a protected file: no public entry point of ward-pf may panic, and whatever
//! authenticates must be exactly the plaintext that was encrypted. See `ward_fuzz::open_untrusted`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ward_fuzz::open_untrusted::run(data);
});

/// ward-pf builds a rayon pool per call when `threads != 1`; its worker threads exit after the
/// call returns, and LeakSanitizer reports glibc's per-thread TLS-destructor record of a thread
/// still exiting as a leak. Suppress exactly that false positive (no other leak checks change).
#[no_mangle]
pub extern "C" fn __lsan_default_suppressions() -> *const std::ffi::c_char {
    c"leak:__cxa_thread_atexit_impl\n".as_ptr()
}
