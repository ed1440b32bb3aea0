//! A tonic codec for any RPC the gateway has a descriptor for: requests go out as
//! `DynamicMessage`s, answers come back as the contract's JSON ([`crate::json_out`]), written
//! straight from the wire when it can be ([`json_out::from_wire`]) and from the decoded message
//! otherwise.

use prost::Message as _;
use prost::bytes::Buf as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::json_out;

/// Encodes request messages and decodes answers of one known type into their JSON.
#[derive(Debug, Clone)]
pub struct DynamicCodec {
    decoder: JsonDecoder,
}

impl DynamicCodec {
    /// A codec whose answers are `output` messages, written as JSON whole or, with
    /// `response_body`, as that field only.
    #[must_use]
    pub fn new(output: MessageDescriptor, response_body: Option<FieldDescriptor>) -> Self {
        Self {
            decoder: JsonDecoder {
                output,
                response_body,
            },
        }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = String;
    type Encoder = DynamicEncoder;
    type Decoder = JsonDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.decoder.clone()
    }
}

/// See [`DynamicCodec`].
#[derive(Debug)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|err| Status::internal(format!("encoding the request failed: {err}")))
    }
}

/// An answer's bytes → its JSON text. See [`DynamicCodec`].
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    output: MessageDescriptor,
    response_body: Option<FieldDescriptor>,
}

impl Decoder for JsonDecoder {
    type Item = String;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        // tonic hands over a whole message in one contiguous buffer.
        let whole = src.chunk().len() == src.remaining();
        if whole
            && let Some(json) =
                json_out::from_wire(src.chunk(), &self.output, self.response_body.as_ref())
        {
            src.advance(src.remaining());
            return Ok(Some(json));
        }
        let message = DynamicMessage::decode(self.output.clone(), src)
            .map_err(|err| Status::internal(format!("decoding the response failed: {err}")))?;
        Ok(Some(json_out::encode(
            &message,
            self.response_body.as_ref(),
        )))
    }
}
