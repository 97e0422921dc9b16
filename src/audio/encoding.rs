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
    /// Reads a wire name (case-insensitive, with Voximplant's aliases and the MIME forms,
    /// whose parameters are ignored: see [`Self::at_rate`] for the rate).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.split(';').next().unwrap_or_default().trim();
        let name = name.to_ascii_uppercase();
        let name = name.strip_prefix("AUDIO/").unwrap_or(&name);
        match name.strip_prefix("X-").unwrap_or(name) {
            "PCM8" | "PCM16_8KHZ" => Some(Self::Pcm8),
            "PCM16" | "PCM16_16KHZ" | "L16" => Some(Self::Pcm16),
            "ULAW" | "PCMU" | "MULAW" | "BASIC" => Some(Self::Ulaw),
            "ALAW" | "PCMA" => Some(Self::Alaw),
            _ => None,
        }
    }

    /// This encoding at `rate` Hz: linear PCM is 8 kHz (`Pcm8`) or 16 kHz (`Pcm16`) whatever
    /// its name said; G.711 only at 8 kHz. None for another rate.
    pub fn at_rate(self, rate: u32) -> Option<Self> {
        match (self, rate) {
            (Self::Pcm8 | Self::Pcm16, 8_000) => Some(Self::Pcm8),
            (Self::Pcm8 | Self::Pcm16, 16_000) => Some(Self::Pcm16),
            (Self::Ulaw | Self::Alaw, 8_000) => Some(self),
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

#[cfg(test)]
mod tests {
    use super::Encoding::{self, *};

    #[test]
    fn wire_names_mime_forms_and_rates() {
        for (name, want) in [
            ("ULAW", Ulaw),
            ("ulaw", Ulaw),
            ("audio/x-mulaw", Ulaw),
            ("Audio/PCMU", Ulaw),
            ("audio/x-mulaw;rate=8000", Ulaw),
            ("audio/x-alaw", Alaw),
            ("audio/pcma", Alaw),
            ("audio/l16", Pcm16),
            ("PCM16", Pcm16),
            ("pcm8", Pcm8),
        ] {
            assert_eq!(Encoding::parse(name), Some(want), "{name}");
        }
        for name in ["audio/opus", "", "audio/", "OPUS", "x-"] {
            assert_eq!(Encoding::parse(name), None, "{name}");
        }
        assert_eq!(Pcm16.at_rate(8000), Some(Pcm8));
        assert_eq!(Pcm8.at_rate(16000), Some(Pcm16));
        assert_eq!(Ulaw.at_rate(8000), Some(Ulaw));
        assert_eq!(Ulaw.at_rate(16000), None);
        assert_eq!(Pcm16.at_rate(44100), None);
    }
}
