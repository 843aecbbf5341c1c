//! RocketMQ's remoting protocol, byte for byte, with no I/O.
//!
//! `ringmq-wire` owns everything a RocketMQ peer puts on the wire and on disk, and nothing
//! else: the frame codec ([`frame`]), the remoting command with both header encodings
//! ([`command`]), request/response/language codes ([`code`]), typed request and response
//! headers per command family ([`header`]), the stored message record codec ([`record`]),
//! message ids ([`msgid`]), and the JSON bodies RocketMQ's fastjson produces and accepts
//! ([`body`], [`json`]). It opens no sockets and knows no broker logic.
//!
//! ```
//! use ringmq_wire::{command::RemotingCommand, code::RequestCode, frame::FrameDecoder};
//!
//! let mut request = RemotingCommand::request(RequestCode::GetRouteinfoByTopic);
//! request.ext_fields.insert("topic".into(), "TopicTest".into());
//! let bytes = request.encode_frame().unwrap();
//!
//! let mut decoder = FrameDecoder::default();
//! decoder.extend(&bytes);
//! let decoded = decoder.next_command().unwrap().unwrap();
//! assert_eq!(decoded.code, RequestCode::GetRouteinfoByTopic.as_i32());
//! assert_eq!(decoded.ext_fields["topic"], "TopicTest");
//! ```

pub mod body;
pub mod code;
pub mod command;
pub mod error;
pub mod frame;
pub mod header;
pub mod json;
pub mod limits;
pub mod msgid;
pub mod record;

pub use code::{LanguageCode, RequestCode, ResponseCode};
pub use command::{RemotingCommand, SerializeType};
pub use error::WireError;
pub use frame::FrameDecoder;
