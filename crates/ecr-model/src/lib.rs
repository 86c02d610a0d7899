//! Wire types for the Amazon ECR and ECR Public APIs (AWS JSON 1.1).
//!
//! Everything under `src/generated/` is written by `cargo run -p berth-xtask -- codegen` from the
//! service models that ship in botocore; this file holds the small hand-written runtime those
//! files build on: [`EpochSeconds`], [`Blob`], the `string_enum!` macro, the error table types and
//! request validation ([`validate`]).
//!
//! Decoding policy, matching AWS: unknown JSON members in a request are ignored; an unknown value
//! of a modelled enum deserializes into that enum's `Unknown(String)` variant and serializes back
//! unchanged, but [`Validate::validate`] reports it as a constraint violation on *inputs* (AWS
//! answers "Member must satisfy enum value set"). Use [`decode_input`] (or the generated
//! `EcrRequest::decode`) to get AWS's order of checks: JSON syntax, then missing required
//! members, then types, then constraints.

use std::fmt;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod validate;

pub use validate::{Required, Validate, ValidationError, Violation};

/// The ECR API (`AmazonEC2ContainerRegistry_V20150921`).
#[path = "generated/ecr.rs"]
pub mod ecr;

/// The ECR Public API (`SpencerFrontendService`).
#[path = "generated/public.rs"]
pub mod public;

pub use ecr::*;

/// A timestamp as AWS JSON 1.1 sends it: seconds since the Unix epoch, possibly fractional.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EpochSeconds(pub f64);

impl EpochSeconds {
    /// From milliseconds since the epoch (what most stores keep).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn from_unix_millis(ms: i64) -> Self {
        Self(ms as f64 / 1000.0)
    }

    /// The current time.
    #[must_use]
    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self(d.as_secs_f64())
    }
}

/// A `blob` member: raw bytes on our side, standard base64 (with padding) on the wire.
/// `Debug` prints only the length (layer parts run to 20 MiB).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob(<{} bytes>)", self.0.len())
    }
}

impl Blob {
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Blob)
            .map_err(|e| serde::de::Error::custom(format_args!("invalid base64 blob: {e}")))
    }
}

/// Whether an error is the caller's fault (4xx) or the service's (5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    Client,
    Server,
}

/// One exception shape of a model: its `__type` code, HTTP status and fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorInfo {
    /// The shape name.
    pub name: &'static str,
    /// The `__type` / `x-amzn-ErrorType` code (the shape name unless the model overrides it).
    pub code: &'static str,
    pub http_status: u16,
    pub fault: Fault,
}

/// Why a request body could not be turned into an input value.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// Not JSON, or a member of the wrong JSON type (AWS: `SerializationException`).
    Serialization(String),
    /// Missing required members or violated constraints (AWS: `ValidationException`).
    Validation(ValidationError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serialization(m) => f.write_str(m),
            Self::Validation(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decode and validate one request body. An empty body counts as `{}` (botocore sends `{}`, other
/// clients sometimes nothing).
///
/// # Errors
/// [`DecodeError::Serialization`] for malformed JSON or wrong member types,
/// [`DecodeError::Validation`] for missing required members (checked first, all at once) and
/// then for constraint violations.
pub fn decode_input<T: DeserializeOwned + Required + Validate>(body: &[u8]) -> Result<T, DecodeError> {
    let value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| DecodeError::Serialization(e.to_string()))?
    };
    if !value.is_object() {
        return Err(DecodeError::Serialization("request body must be a JSON object".to_owned()));
    }
    let mut violations = Vec::new();
    T::check_required(&value, "", &mut violations);
    if !violations.is_empty() {
        return Err(DecodeError::Validation(ValidationError::new(violations)));
    }
    let input: T = serde_json::from_value(value).map_err(|e| DecodeError::Serialization(e.to_string()))?;
    input.validate().map_err(DecodeError::Validation)?;
    Ok(input)
}

/// Defines a string enum that keeps values it does not know: `Unknown(String)` round-trips.
/// Used by the generated code.
#[macro_export]
macro_rules! string_enum {
    ($name:ident { $($variant:ident = $value:literal,)* }) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)*
            /// A value this model version does not know.
            Unknown(::std::string::String),
        }

        impl $name {
            /// Every value the model knows, in model order.
            pub const VALUES: &'static [&'static str] = &[$($value,)*];

            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $value,)*
                    Self::Unknown(s) => s,
                }
            }

            #[must_use]
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($value => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Ok(Self::from(&*s))
            }
        }

        impl $crate::validate::EnumValue for $name {
            fn enum_str(&self) -> &str {
                self.as_str()
            }
            fn enum_is_known(&self) -> bool {
                self.is_known()
            }
            fn enum_values() -> &'static [&'static str] {
                Self::VALUES
            }
        }
    };
}
