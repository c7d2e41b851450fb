# Whether the loaded data.table tolerates a valid self-reference on a table
# whose true length is 0, as an ALTREP list's is (R >= 4.3): data.table
# before 1.18.0 trusts that count of column slots for its shallow copy,
# making a list of no slots (`lapply()` over the table fails). Asked by
# src/rust/src/build/selfref.rs before it renews the self-reference of the
# owner's view of a data.table; where the answer is no, that view is a
# plain list whose true length is set (R 4.3-4.5) or keeps the original
# self-reference (R >= 4.6: `:=` then warns and takes a shallow copy).
selfref_renewable <- function() {
  isNamespaceLoaded("data.table") &&
    package_version(getNamespaceVersion("data.table")[[1L]]) >= "1.18.0"
}
