//! CRC-32C (Castagnoli) of spec 4.5: the checksum of a `tsum` chunk. Reflected polynomial
//! 0x82F63B78, initial value and final XOR 0xFFFFFFFF (the CRC of iSCSI and ext4; check
//! value 0xE3069283 for the ASCII bytes "123456789").

/// The byte-at-a-time table of the reflected polynomial.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c_of_parts(&[bytes])
}

/// CRC-32C of the concatenation of `parts` (a STEP payload and its TILE payload, spec 4.5).
pub fn crc32c_of_parts(parts: &[&[u8]]) -> u32 {
    let mut c = u32::MAX;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn check_values() {
        // The check value of the CRC catalogue, and RFC 3720 B.4's test patterns.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }
}
