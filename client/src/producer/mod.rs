//! The producer: queue choice with latency fault avoidance ([`fault`]) and ordered-send
//! selectors ([`selector`]).

pub mod fault;
pub mod selector;
