//! `engine`: train, generate and evaluate NegOpt's seq2seq model.
fn main() {}
