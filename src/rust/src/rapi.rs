//! A small layer over the R C API for the rest of the crate.
//!
//! The rule it serves: an R call that can signal an error (anything that
//! allocates, evaluates or coerces) long-jumps over the Rust frames between it
//! and R. Those frames must own nothing with a destructor. So Rust state that
//! must survive an R call lives behind an external pointer that R's garbage
//! collector finalizes ([`boxed_extptr`]), and Rust values are dropped before
//! the R call is made.

pub mod unwind;

use std::ffi::CStr;
use std::os::raw::c_void;

use crate::error::Result;
use crate::ffi::{self, Rboolean, SEXP, SEXPTYPE};

/// `PROTECT`s values and `UNPROTECT`s them all when dropped. If R long-jumps
/// past it instead, R resets its protect stack itself.
pub struct Protector(i32);

impl Protector {
    pub fn new() -> Protector {
        Protector(0)
    }

    pub fn protect(&mut self, x: SEXP) -> SEXP {
        // SAFETY: PROTECT on any SEXP is allowed; balanced in Drop.
        unsafe { ffi::Rf_protect(x) };
        self.0 += 1;
        x
    }
}

impl Drop for Protector {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: unprotects exactly what this value protected.
            unsafe { ffi::Rf_unprotect(self.0) };
        }
    }
}

pub fn nil() -> SEXP {
    // SAFETY: reading R's global constant.
    unsafe { ffi::R_NilValue }
}

pub fn type_of(x: SEXP) -> SEXPTYPE {
    // SAFETY: TYPEOF reads the header of a valid SEXP.
    unsafe { ffi::TYPEOF(x) }
}

pub fn xlength(x: SEXP) -> u64 {
    // SAFETY: valid SEXP; for ALTREP this calls our or another class's Length.
    unsafe { ffi::Rf_xlength(x) as u64 }
}

pub fn is_altrep(x: SEXP) -> bool {
    // SAFETY: reads a header bit.
    unsafe { ffi::ALTREP(x) != 0 }
}

/// Whether `x` has any attribute.
pub fn has_attributes(x: SEXP) -> bool {
    // SAFETY: reads a field of a valid SEXP.
    #[cfg(r_any_attrib)]
    return unsafe { ffi::ANY_ATTRIB(x) != 0 };
    #[cfg(not(r_any_attrib))]
    return unsafe { ffi::ATTRIB(x) } != nil();
}

/// `x`'s attributes as (tag, value) pairs, in order, as stored (compact row
/// names stay compact). Allocates nothing in R.
pub fn attribute_pairs(x: SEXP) -> Vec<(SEXP, SEXP)> {
    let mut pairs: Vec<(SEXP, SEXP)> = Vec::new();
    #[cfg(r_map_attrib)]
    {
        unsafe extern "C" fn push(tag: SEXP, value: SEXP, data: *mut c_void) -> SEXP {
            // SAFETY: data is the &mut Vec passed below, alive for the call.
            unsafe { (*data.cast::<Vec<(SEXP, SEXP)>>()).push((tag, value)) };
            std::ptr::null_mut() // go on
        }
        // SAFETY: R_mapAttrib calls `push` once per attribute and nothing
        // else (push never returns non-NULL, allocates no R memory and
        // cannot signal an R error).
        unsafe { ffi::R_mapAttrib(x, Some(push), (&mut pairs as *mut Vec<(SEXP, SEXP)>).cast()) };
    }
    #[cfg(not(r_map_attrib))]
    {
        // SAFETY: walking the attribute pairlist's TAG/CAR/CDR (what
        // R_mapAttrib does from R 4.6 on).
        let mut cell = unsafe { ffi::ATTRIB(x) };
        while cell != nil() {
            unsafe {
                pairs.push((ffi::TAG(cell), ffi::CAR(cell)));
                cell = ffi::CDR(cell);
            }
        }
    }
    pairs
}

/// Sets the attributes in the pairlist `attrs` on `x`, in order. `attrs`
/// must satisfy what R's setter checks for names, dim, dimnames, class and
/// tsp (decode::check_attributes), or R signals an error.
///
/// From R 4.6 on, through R's setter one by one (which also sets the object
/// bit for a class): R's API has no way to hand over a whole attribute list,
/// and `SET_ATTRIB`/`SET_OBJECT` are not part of it. Before, the list is
/// installed as it is, which costs no allocation: decoding a list of 1e5
/// small classed vectors took 1.5x as long through the setter on R 4.2.
pub fn set_attribute_list(x: SEXP, attrs: SEXP) -> Result<()> {
    #[cfg(not(r_map_attrib))]
    {
        let mut is_object = false;
        let mut cell = attrs;
        while cell != nil() {
            // SAFETY: walking a pairlist the caller keeps protected.
            unsafe {
                is_object |= ffi::TAG(cell) == ffi::R_ClassSymbol;
                cell = ffi::CDR(cell);
            }
        }
        // SAFETY: x is an object the caller just made; the list is complete.
        unsafe {
            ffi::SET_ATTRIB(x, attrs);
            if is_object {
                ffi::SET_OBJECT(x, 1);
            }
        }
    }
    #[cfg(r_map_attrib)]
    {
        let mut cell = attrs;
        while cell != nil() {
            // SAFETY: walking a pairlist the caller keeps protected; setAttrib
            // protects x and the value while it allocates, and its error is
            // caught by `protect`.
            unsafe {
                let (tag, value) = (ffi::TAG(cell), ffi::CAR(cell));
                unwind::protect(|| ffi::Rf_setAttrib(x, tag, value))?;
                cell = ffi::CDR(cell);
            }
        }
    }
    Ok(())
}

/// Where the elements of `x`, a fresh (non-ALTREP) logical, integer,
/// double, complex or raw vector, start, for writing; NULL for other types.
pub fn atomic_data_mut(x: SEXP) -> *mut u8 {
    // SAFETY: each accessor matches the vector's type (DATAPTR, which takes
    // any type, is not part of R's API).
    unsafe {
        match type_of(x) {
            SEXPTYPE::LGLSXP => ffi::LOGICAL(x).cast(),
            SEXPTYPE::INTSXP => ffi::INTEGER(x).cast(),
            SEXPTYPE::REALSXP => ffi::REAL(x).cast(),
            SEXPTYPE::CPLXSXP => ffi::COMPLEX(x).cast(),
            SEXPTYPE::RAWSXP => ffi::RAW(x).cast(),
            _ => std::ptr::null_mut(),
        }
    }
}

/// The symbol `name` (allocates the first time a name is used).
pub fn install(name: &CStr) -> Result<SEXP> {
    let name = name.as_ptr();
    // SAFETY: a NUL-terminated name; symbols are never collected.
    unwind::protect(|| unsafe { ffi::Rf_install(name) })
}

/// A new vector of type `ty` and length `n` (R may signal an error: out of
/// memory).
pub fn alloc_vector(ty: SEXPTYPE, n: u64) -> Result<SEXP> {
    // SAFETY: an allocation; a failure long-jumps only to `protect`.
    unwind::protect(|| unsafe { ffi::Rf_allocVector(ty, n as ffi::R_xlen_t) })
}

/// `alloc_vector` as a plain call, for paths R takes many times over
/// (`x[i]` in a loop), where the protected call would cost a third of the
/// time: a failure long-jumps out of the caller.
///
/// # Safety
/// No Rust frame between R and the caller may own a value with a destructor.
pub unsafe fn alloc_vector_owning_nothing(ty: SEXPTYPE, n: u64) -> SEXP {
    // SAFETY: an allocation.
    unsafe { ffi::Rf_allocVector(ty, n as ffi::R_xlen_t) }
}

/// A new pairlist cell (allocates).
pub fn cons(car: SEXP, cdr: SEXP) -> Result<SEXP> {
    // SAFETY: Rf_cons protects its arguments while it allocates.
    unwind::protect(|| unsafe { ffi::Rf_cons(car, cdr) })
}

/// A new call cell (allocates).
pub fn lcons(car: SEXP, cdr: SEXP) -> Result<SEXP> {
    // SAFETY: Rf_lcons protects its arguments while it allocates.
    unwind::protect(|| unsafe { ffi::Rf_lcons(car, cdr) })
}

/// A copy of `x` (allocates; may call an ALTREP class's Duplicate method).
pub fn duplicate(x: SEXP) -> Result<SEXP> {
    // SAFETY: Rf_duplicate of a valid object.
    unwind::protect(|| unsafe { ffi::Rf_duplicate(x) })
}

/// Element `i` of the character vector `x`. Reading a plain vector cannot
/// fail; an ALTREP one runs its class's Elt method, which may allocate and
/// signal an error.
pub fn string_elt(x: SEXP, i: u64) -> Result<SEXP> {
    let i = i as ffi::R_xlen_t;
    if !is_altrep(x) {
        // SAFETY: the caller gives a character vector longer than i.
        return Ok(unsafe { ffi::STRING_ELT(x, i) });
    }
    // SAFETY: as above, through the class's method.
    unwind::protect(|| unsafe { ffi::STRING_ELT(x, i) })
}

/// Element `i` of the list `x` (see `string_elt`: an ALTREP list, ours on R
/// >= 4.3 among them, makes the element when asked).
pub fn vector_elt(x: SEXP, i: u64) -> Result<SEXP> {
    let i = i as ffi::R_xlen_t;
    if !is_altrep(x) {
        // SAFETY: the caller gives a list longer than i.
        return Ok(unsafe { ffi::VECTOR_ELT(x, i) });
    }
    // SAFETY: as above, through the class's method.
    unwind::protect(|| unsafe { ffi::VECTOR_ELT(x, i) })
}

/// Keeps `x` alive until [`release`] (allocates).
pub fn preserve(x: SEXP) -> Result<()> {
    // SAFETY: R_PreserveObject protects its argument while it allocates.
    unwind::protect(|| unsafe { ffi::R_PreserveObject(x) })
}

/// The bytes of a CHARSXP (not NA_STRING).
pub fn char_bytes<'a>(c: SEXP) -> &'a [u8] {
    // SAFETY: a CHARSXP holds LENGTH bytes at R_CHAR; CHARSXPs are immutable
    // and live as long as the vector referencing them.
    unsafe { std::slice::from_raw_parts(ffi::R_CHAR(c).cast::<u8>(), ffi::LENGTH(c) as usize) }
}

pub fn is_na_string(c: SEXP) -> bool {
    // SAFETY: compares with R's NA_STRING constant.
    c == unsafe { ffi::R_NaString }
}

/// An R string (CHARSXP) of `bytes` in encoding `ce` (allocates). R
/// refuses texts of 2^31 bytes or more and texts with a NUL byte (an error).
pub fn char_ce(bytes: &[u8], ce: ffi::cetype_t) -> Result<SEXP> {
    let (ptr, len) = (bytes.as_ptr(), bytes.len().min(i32::MAX as usize) as i32);
    // SAFETY: ptr is valid for len bytes while the closure runs; R copies them.
    unwind::protect(|| unsafe { ffi::Rf_mkCharLenCE(ptr.cast(), len, ce) })
}

/// `char_ce` as a plain call: a failure long-jumps out of the caller.
///
/// # Safety
/// No Rust frame between R and the caller may own a value with a destructor.
pub unsafe fn char_ce_owning_nothing(bytes: &[u8], ce: ffi::cetype_t) -> SEXP {
    let len = bytes.len().min(i32::MAX as usize) as i32;
    // SAFETY: bytes is valid for len bytes; R copies them.
    unsafe { ffi::Rf_mkCharLenCE(bytes.as_ptr().cast(), len, ce) }
}

/// An R string (CHARSXP) of UTF-8 text `s` (allocates).
pub fn utf8_char(s: &str) -> Result<SEXP> {
    char_ce(s.as_bytes(), ffi::cetype_t::CE_UTF8)
}

/// An R string of `s` kept alive for the life of the process (for values
/// made once, at load time).
pub fn preserved_utf8_char(s: &str) -> Result<SEXP> {
    let c = utf8_char(s)?;
    preserve(c)?;
    Ok(c)
}

/// A length-one character vector (allocates).
pub fn scalar_string(s: &str) -> Result<SEXP> {
    let c = utf8_char(s)?;
    // SAFETY: Rf_ScalarString protects its argument while it allocates.
    unwind::protect(|| unsafe { ffi::Rf_ScalarString(c) })
}

/// A length-one logical vector (allocates).
pub fn scalar_logical(v: bool) -> Result<SEXP> {
    // SAFETY: allocation of a scalar.
    unwind::protect(|| unsafe { ffi::Rf_ScalarLogical(v as i32) })
}

/// A length-one double vector (allocates).
pub fn scalar_real(v: f64) -> Result<SEXP> {
    // SAFETY: allocation of a scalar.
    unwind::protect(|| unsafe { ffi::Rf_ScalarReal(v) })
}

/// A length-one integer vector (allocates).
pub fn scalar_integer(v: i32) -> Result<SEXP> {
    // SAFETY: allocation of a scalar.
    unwind::protect(|| unsafe { ffi::Rf_ScalarInteger(v) })
}

/// The string in a length-one, non-NA character vector; `None` otherwise
/// (an error only if reading an ALTREP argument fails).
pub fn as_single_string<'a>(x: SEXP) -> Result<Option<&'a str>> {
    if type_of(x) != SEXPTYPE::STRSXP || xlength(x) != 1 {
        return Ok(None);
    }
    let c = string_elt(x, 0)?;
    if is_na_string(c) {
        return Ok(None);
    }
    Ok(std::str::from_utf8(char_bytes(c)).ok())
}

unsafe extern "C" fn drop_boxed<T>(ptr: SEXP) {
    // SAFETY: the address was made by Box::into_raw in boxed_extptr and is
    // cleared right after, so it is dropped exactly once.
    let raw = unsafe { ffi::R_ExternalPtrAddr(ptr) } as *mut T;
    if !raw.is_null() {
        unsafe {
            ffi::R_ClearExternalPtr(ptr);
            drop(Box::from_raw(raw));
        }
    }
}

/// Moves `value` into an external pointer whose finalizer (also run at exit)
/// drops it. Returns the unprotected pointer object. If R cannot make it,
/// `value` is dropped here.
pub fn boxed_extptr<T>(value: Box<T>) -> Result<SEXP> {
    let raw = Box::into_raw(value);
    // SAFETY: from here on R owns the box (a pointer, no destructor, while R
    // allocates); the finalizer drops it once.
    let made = unwind::protect(|| unsafe {
        let ptr = ffi::Rf_protect(ffi::R_MakeExternalPtr(raw.cast::<c_void>(), nil(), nil()));
        ffi::R_RegisterCFinalizerEx(ptr, Some(drop_boxed::<T>), Rboolean::TRUE);
        crate::deferred::note(ptr, drop_boxed::<T>);
        ffi::Rf_unprotect(1);
        ptr
    });
    match made {
        Ok(ptr) => Ok(ptr),
        Err(e) => {
            // SAFETY: R made no pointer that could own the box, or one whose
            // finalizer was not registered: give the box back. (If the jump
            // came from registering the finalizer, the unreachable pointer
            // keeps the address but never frees it.)
            drop(unsafe { Box::from_raw(raw) });
            Err(e)
        }
    }
}

/// The value inside an external pointer made by [`boxed_extptr`] (None once
/// finalized).
///
/// # Safety
/// `ptr` must have been made by `boxed_extptr::<T>` with this same `T`.
pub unsafe fn extptr_ref<'a, T>(ptr: SEXP) -> Option<&'a mut T> {
    // SAFETY: per the contract, the address is a live Box<T> or NULL.
    unsafe { (ffi::R_ExternalPtrAddr(ptr) as *mut T).as_mut() }
}

/// Evaluates `fun(args...)` in the base namespace without letting an R
/// error escape (`Ok(None)` if it failed; an error only if the call cannot
/// be built), nor an interrupt be taken for one.
pub fn try_call(fun: &CStr, args: &[SEXP]) -> Result<Option<SEXP>> {
    let mut p = Protector::new();
    let mut list = p.protect(nil());
    // Each cell is consed onto the protected rest.
    for &arg in args.iter().rev() {
        list = p.protect(cons(arg, list)?);
    }
    let call = p.protect(lcons(install(fun)?, list)?);
    // SAFETY: R_tryEvalSilent catches any R error (and any other jump to
    // the top level) and reports it through `failed`; the closure captures
    // only pointers.
    // Interrupts held: a Ctrl-C during a long serialize() stays pending
    // (for pace::check, or R afterwards) instead of becoming a failure.
    let (result, failed) = with_interrupts_held(|| {
        unwind::protect(|| unsafe {
            let mut failed = 0;
            let result = ffi::R_tryEvalSilent(call, ffi::R_BaseNamespace, &mut failed);
            (result, failed)
        })
    })?;
    Ok((failed == 0).then_some(result))
}

/// A raw vector holding a copy of `bytes` (allocates).
pub fn raw_vector(bytes: &[u8]) -> Result<SEXP> {
    let v = alloc_vector(SEXPTYPE::RAWSXP, bytes.len() as u64)?;
    // SAFETY: a fresh RAWSXP of the right length, filled before anything else runs.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ffi::RAW(v), bytes.len()) };
    Ok(v)
}

pub fn raw_bytes<'a>(v: SEXP) -> &'a [u8] {
    // SAFETY: v is a RAWSXP; its data lives as long as v.
    unsafe { std::slice::from_raw_parts(ffi::RAW(v), xlength(v) as usize) }
}

/// Direct reads of R object fields, for the one path where a function call
/// per element is most of the cost: the views' `Elt`, `Length` and `Dataptr`
/// methods, which R calls once per element when C code walks a vector. The offsets are those of R's
/// `SEXPREC`/`VECTOR_SEXPREC` on 64-bit builds (unchanged since R 3.5);
/// [`check_layout`] verifies them against R's own accessors at load time, and
/// the callers take their API path if they differ.
pub mod fields {
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::ffi::{self, SEXP, SEXPTYPE};

    /// `CAR` (an ALTREP object's `data1`, an external pointer's address):
    /// after the header's four pointers.
    const CAR_OFFSET: usize = 32;
    /// `CDR` (an ALTREP object's `data2`): after `CAR`.
    const CDR_OFFSET: usize = 40;
    /// A vector's first element: after the header's four pointers, length and
    /// true length.
    const DATA_OFFSET: usize = 48;

    static VERIFIED: AtomicBool = AtomicBool::new(false);

    /// The pointer-sized field `offset` bytes into the object `x`.
    ///
    /// # Safety
    /// `x` must be an R object with a pointer field at that offset.
    #[inline(always)]
    unsafe fn field(x: SEXP, offset: usize) -> SEXP {
        // SAFETY: per the contract.
        unsafe { *(x as *const u8).add(offset).cast::<SEXP>() }
    }

    /// Where the elements of the plain character vector or list `v` start.
    ///
    /// # Safety
    /// `v` must be a plain (non-ALTREP) character vector or list.
    #[inline(always)]
    unsafe fn elements(v: SEXP) -> *mut SEXP {
        // SAFETY: per the contract, the elements follow the vector header.
        unsafe { (v as *mut u8).add(DATA_OFFSET).cast::<SEXP>() }
    }

    /// The environment variable that, set to 1 (or true) when the package
    /// loads, makes every read take the API path, as if the layout check had
    /// failed: so that path runs in CI too (R's layout has not changed since
    /// R 3.5, so it would otherwise never run).
    pub const FORCE_CHECKED: &str = "MORI_CHECKED_FIELDS";

    fn checked_forced() -> bool {
        std::env::var(FORCE_CHECKED).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true"))
    }

    /// Whether the reads go straight to the fields (the layout check passed
    /// and MORI_CHECKED_FIELDS did not ask for the API path).
    pub fn direct() -> bool {
        VERIFIED.load(Ordering::Relaxed)
    }

    /// Compares the offsets with R's accessors on objects made for the test
    /// (unless MORI_CHECKED_FIELDS forces the API path).
    pub fn check_layout() {
        if checked_forced() {
            VERIFIED.store(false, Ordering::Relaxed);
            return;
        }
        // SAFETY: allocations of two small objects, protected while read; the
        // raw reads are within the objects R just allocated (a cons cell has
        // at least CDR_OFFSET + 8 bytes, the vector DATA_OFFSET + 8).
        let same = unsafe {
            let v = ffi::Rf_protect(ffi::Rf_allocVector(SEXPTYPE::STRSXP, 1));
            let cell = ffi::Rf_protect(ffi::Rf_cons(v, ffi::R_NilValue));
            let marker = cell as *mut std::os::raw::c_void;
            let ext = ffi::Rf_protect(ffi::R_MakeExternalPtr(marker, ffi::R_NilValue, ffi::R_NilValue));
            let same = std::mem::size_of::<usize>() == 8
                && std::ptr::eq(elements(v), ffi::STRING_PTR_RO(v))
                && field(cell, CAR_OFFSET) == ffi::CAR(cell)
                && field(cell, CDR_OFFSET) == ffi::CDR(cell)
                && field(ext, CAR_OFFSET) as *mut std::os::raw::c_void == ffi::R_ExternalPtrAddr(ext);
            ffi::Rf_unprotect(3);
            same
        };
        VERIFIED.store(same, Ordering::Relaxed);
    }

    /// Sets every element of `v`, a character vector R has just allocated,
    /// to the R string `value`, with plain stores where the layout check
    /// passed (as R's own allocVector fills a new character vector).
    ///
    /// # Safety
    /// `v` must be a character vector allocated with no R allocation (so no
    /// garbage collection) since: a new object needs no write barrier.
    pub unsafe fn fill_new_strings(v: SEXP, value: SEXP) {
        // SAFETY: per the contract; the offset was checked at load.
        unsafe {
            let n = ffi::Rf_xlength(v);
            if VERIFIED.load(Ordering::Relaxed) {
                std::slice::from_raw_parts_mut(elements(v), n as usize).fill(value);
            } else {
                for i in 0..n {
                    ffi::SET_STRING_ELT(v, i, value);
                }
            }
        }
    }

    /// The address held by the external pointer in `data1` of the ALTREP
    /// object `x`; `None` if the layout check failed.
    ///
    /// # Safety
    /// `x` must be an ALTREP object whose `data1` is an external pointer.
    #[inline(always)]
    pub unsafe fn data1_address(x: SEXP) -> Option<*mut std::os::raw::c_void> {
        if !VERIFIED.load(Ordering::Relaxed) {
            return None;
        }
        // SAFETY: the offsets were checked against CAR and R_ExternalPtrAddr
        // at load; CAR(x) is data1, whose CAR is the address.
        unsafe { Some(field(field(x, CAR_OFFSET), CAR_OFFSET).cast::<std::os::raw::c_void>()) }
    }

    /// Element `i` of the plain character vector or list in `data2` of the
    /// ALTREP object `x`, read without a function call; `None` when `data2`
    /// is NULL or the layout check failed (the caller then goes the API way).
    ///
    /// # Safety
    /// `x` must be an ALTREP object whose `data2` is NULL or a plain
    /// character vector or list longer than `i`.
    #[inline(always)]
    pub unsafe fn data2_element(x: SEXP, i: isize) -> Option<SEXP> {
        if !VERIFIED.load(Ordering::Relaxed) {
            return None;
        }
        // SAFETY: the offsets were checked against CDR and STRING_PTR_RO at
        // load (a list's elements sit where a character vector's do); CDR(x)
        // is data2, a vector with more than i elements.
        unsafe {
            let c = field(x, CDR_OFFSET);
            if c == ffi::R_NilValue {
                return None;
            }
            Some(*elements(c).offset(i))
        }
    }
}

/// Whether the user has asked to interrupt (Ctrl-C) and R would act on it
/// now. Only reads R's flag: the interrupt stays pending, so that
/// [`resignal_interrupt`] can let R act on it once the Rust frames that
/// own things are gone (R's own check would long-jump over them).
pub fn interrupt_pending() -> bool {
    // SAFETY: plain reads of two ints R's signal handler may set at any time
    // (volatile, so every call reads them again).
    unsafe {
        std::ptr::read_volatile(std::ptr::addr_of!(ffi::R_interrupts_pending)) != 0
            && std::ptr::read_volatile(std::ptr::addr_of!(ffi::R_interrupts_suspended)) == 0
    }
}

/// Lets R act on the user's interrupt: marks it pending again (in case R
/// code on the way cleared the flag) and asks R to check, which signals R's own `interrupt` condition (so
/// `tryCatch(interrupt = )` sees it) and long-jumps. Returns only if R holds
/// interrupts back. Call it with no Rust value with a destructor live.
pub fn resignal_interrupt() {
    // SAFETY: sets R's own flag, as its SIGINT handler does; then R's
    // documented check, which long-jumps if the interrupt is taken.
    unsafe {
        std::ptr::write_volatile(std::ptr::addr_of_mut!(ffi::R_interrupts_pending), 1);
        ffi::R_CheckUserInterrupt()
    }
}

/// Runs `f` with R's interrupts held back: one that arrives meanwhile stays
/// pending (for [`interrupt_pending`]) instead of being taken by an R error
/// handler inside `f` (`try_call` would swallow it).
pub fn with_interrupts_held<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: the flag R's BEGIN_SUSPEND_INTERRUPTS sets, restored below;
    // only R's thread calls this, and `f` (an R_tryEvalSilent) neither
    // panics nor long-jumps.
    let old = unsafe { std::ptr::replace(std::ptr::addr_of_mut!(ffi::R_interrupts_suspended), 1) };
    let out = f();
    // SAFETY: as above.
    unsafe { std::ptr::write(std::ptr::addr_of_mut!(ffi::R_interrupts_suspended), old) };
    out
}

/// Whether R runs interactively (a console a person types into), as R's
/// `interactive()` says (the `R_Interactive` variable is not part of R's
/// API: R CMD check on R 4.6 notes it).
pub fn is_interactive() -> bool {
    // SAFETY: LOGICAL_ELT of the logical scalar interactive() returns.
    try_call(c"interactive", &[])
        .ok()
        .flatten()
        .is_some_and(|v| type_of(v) == SEXPTYPE::LGLSXP && xlength(v) == 1 && unsafe { ffi::LOGICAL_ELT(v, 0) } == 1)
}

/// The value of R option `name` (R_NilValue if unset; does not allocate).
pub fn option(name: &CStr) -> SEXP {
    // If making the symbol fails, the caught R error is resumed by `guard`.
    let Ok(symbol) = install(name) else { return nil() };
    // SAFETY: GetOption1 looks the symbol up in .Options without allocating.
    unsafe { ffi::Rf_GetOption1(symbol) }
}

/// Evaluates `mori:::fun(args...)` without letting an R error escape;
/// `None` if it failed.
pub fn try_call_own(fun: &CStr, args: &[SEXP]) -> Option<SEXP> {
    let mut p = Protector::new();
    // Building the call on protected objects, as in try_call (a failed
    // allocation is caught, and resumed by `guard`).
    let mut list = p.protect(nil());
    for &arg in args.iter().rev() {
        list = p.protect(cons(arg, list).ok()?);
    }
    let target = p.protect(cons(install(fun).ok()?, nil()).ok()?);
    let target = p.protect(cons(install(c"mori").ok()?, target).ok()?);
    let getter = p.protect(lcons(install(c":::").ok()?, target).ok()?);
    let call = p.protect(lcons(getter, list).ok()?);
    let mut failed = 0;
    // SAFETY: R_tryEvalSilent catches any R error.
    let result = unsafe { ffi::R_tryEvalSilent(call, ffi::R_BaseNamespace, &mut failed) };
    (failed == 0).then_some(result)
}
