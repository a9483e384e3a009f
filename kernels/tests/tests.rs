//! Integration tests for negopt-kernels (one binary, see STYLE §9).
mod compile;
