//! Entry point of the rocketchatd daemon.
fn main() {}
