//! The telephone audio encodings of Voximplant's `WebSocketAudioEncoding`: their wire
//! names, rates, and payload bytes ↔ 16-bit samples.

use super::g711;

/// Audio encodings of `WebSocketAudioEncoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 16-bit little-endian linear PCM at 8 kHz.
    Pcm8,
    /// 16-bit little-endian linear PCM at 16 kHz.
    Pcm16,
    Ulaw,
    Alaw,
}

impl Encoding {
    /// Reads a wire name (case-insensitive, with Voximplant's aliases).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PCM8" | "PCM16_8KHZ" => Some(Self::Pcm8),
            "PCM16" | "PCM16_16KHZ" => Some(Self::Pcm16),
            "ULAW" | "PCMU" | "MULAW" => Some(Self::Ulaw),
            "ALAW" | "PCMA" => Some(Self::Alaw),
            _ => None,
        }
    }

    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Pcm8 => "PCM8",
            Self::Pcm16 => "PCM16",
            Self::Ulaw => "ULAW",
            Self::Alaw => "ALAW",
        }
    }

    pub fn rate(self) -> u32 {
        if self == Self::Pcm16 {
            16_000
        } else {
            8_000
        }
    }

    /// Payload bytes → samples (an odd trailing PCM byte is dropped).
    pub fn decode(self, bytes: &[u8]) -> Vec<i16> {
        match self {
            Self::Pcm8 | Self::Pcm16 => bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
            Self::Ulaw => bytes.iter().map(|&b| g711::ulaw_decode(b)).collect(),
            Self::Alaw => bytes.iter().map(|&b| g711::alaw_decode(b)).collect(),
        }
    }

    /// Samples → payload bytes.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcm8 | Self::Pcm16 => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Self::Ulaw => samples.iter().map(|&s| g711::ulaw_encode(s)).collect(),
            Self::Alaw => samples.iter().map(|&s| g711::alaw_encode(s)).collect(),
        }
    }
}
