//! G.711 μ-law and A-law, the 8 kHz telephone encodings Voximplant streams as ULAW/ALAW.

/// μ-law byte → 16-bit linear sample.
pub fn ulaw_decode(b: u8) -> i16 {
    let b = !b;
    let sign = b & 0x80;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// 16-bit linear sample → μ-law byte.
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// A-law byte → 16-bit linear sample.
pub fn alaw_decode(b: u8) -> i16 {
    let b = b ^ 0x55;
    let sign = b & 0x80;
    let exponent = i32::from((b >> 4) & 0x07);
    let mantissa = i32::from(b & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

/// 16-bit linear sample → A-law byte.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s >= 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s - 1;
    }
    let s = s.min(32_767);
    let (exponent, mantissa) = if s < 256 {
        (0, (s >> 4) & 0x0F)
    } else {
        let exponent = (31 - (s as u32).leading_zeros() as i32) - 7;
        (exponent, (s >> (exponent + 3)) & 0x0F)
    };
    ((sign | (exponent << 4) | mantissa) as u8) ^ 0x55
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_matches_the_standard_table_and_round_trips() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_encode(0), 0xFF);
        for b in 0..=255u8 {
            let s = ulaw_decode(b);
            assert_eq!(ulaw_decode(ulaw_encode(s)), s, "byte {b:#x}");
        }
    }

    #[test]
    fn alaw_matches_the_standard_table_and_round_trips() {
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32_256);
        for b in 0..=255u8 {
            let s = alaw_decode(b);
            assert_eq!(alaw_decode(alaw_encode(s)), s, "byte {b:#x}");
        }
    }

    #[test]
    fn quantization_error_is_small() {
        for s in (-32_000i32..32_000).step_by(97) {
            let s = s as i16;
            let err_u = (i32::from(ulaw_decode(ulaw_encode(s))) - i32::from(s)).abs();
            let err_a = (i32::from(alaw_decode(alaw_encode(s))) - i32::from(s)).abs();
            let bound = (i32::from(s).abs() / 16).max(16);
            assert!(
                err_u <= bound && err_a <= bound,
                "{s}: μ {err_u}, A {err_a}"
            );
        }
    }
}
