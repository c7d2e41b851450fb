# Whether the owner's view of a data.table gets a fresh self-reference
# (src/rust/src/build/selfref.rs) where lists are ALTREP (R >= 4.3): its
# true length is 0 there, and data.table before 1.18.0 trusts a valid
# self-reference's true length for its shallow copy, making a list of no
# slots (`lapply()` over the table fails). Such a table keeps the original
# self-reference: `:=` then warns and takes a shallow copy, as on a table R
# copied.
selfref_renewable <- function() {
  isNamespaceLoaded("data.table") &&
    package_version(getNamespaceVersion("data.table")[[1L]]) >= "1.18.0"
}
