//! The decoding process up to the quantised coefficients (T.81 E.2.1 for sequential,
//! G.2 for progressive frames, without the IDCT): markers in order, tables as they are
//! defined, each scan decoded into the coefficient buffers of its components.
//!
//! Lenient decoding ([`DecodeOptions::lenient`]) recovers where libjpeg warns or is less
//! strict: besides the entropy-coded data (see `restart`), a file that ends without EOI
//! (after a segment, or inside one, whose rest libjpeg reads as fake EOI markers) ends
//! there, a DNL segment is skipped, a sequential scan with odd Ss/Se/Ah/Al is decoded as a
//! full one, bytes skipped before a marker are reported, and the header checks are
//! libjpeg 6b's (repeated component identifiers, table selectors checked where used, no
//! quantisation table needed for a component no scan carries).

use super::bitreader::BitReader;
use super::error::JpegError;
use super::huffman::HuffmanTable;
use super::layout::FrameLayout;
use super::markers::{self as mk, FrameHeader, Marker, Process, ScanHeader};
use super::restart::{decode_mcus, Lenient};
use super::warning::{WarningKind, Warnings};
use super::{progressive, sequential, Coefficients, ComponentCoefficients, DecodeOptions};

/// Decoder state between markers.
struct State {
    dc: [Option<HuffmanTable>; 4],
    ac: [Option<HuffmanTable>; 4],
    quant: [Option<[u16; 64]>; 4],
    restart_interval: u16,
    frame: Option<Frame>,
    scans: u32,
    lenient: bool,
    warnings: Warnings,
}

struct Frame {
    header: FrameHeader,
    layout: FrameLayout,
    storage: Vec<Vec<i16>>,
    /// Quantisation table of each component, latched at its first scan as libjpeg does.
    quant: Vec<Option<[u16; 64]>>,
}

fn allocate(blocks: usize) -> Result<Vec<i16>, JpegError> {
    let n = blocks.saturating_mul(64);
    let mut v: Vec<i16> = Vec::new();
    v.try_reserve_exact(n).map_err(|_| JpegError::OutOfMemory {
        bytes: n as u64 * 2,
    })?;
    v.resize(n, 0);
    Ok(v)
}

/// Decodes `data` to quantised DCT coefficients. See the module documentation of
/// [`crate::jpeg`].
pub fn decode(data: &[u8], opts: &DecodeOptions) -> Result<Coefficients, JpegError> {
    if data.get(..2) != Some(&[0xFF, mk::SOI][..]) {
        return Err(JpegError::NotJpeg);
    }
    let mut st = State {
        dc: Default::default(),
        ac: Default::default(),
        quant: [None; 4],
        restart_interval: 0,
        frame: None,
        scans: 0,
        lenient: opts.lenient,
        warnings: Warnings::default(),
    };
    let mut pos = 2;
    // The payload of marker `m`'s segment and the offset after it. Lenient: a file that
    // ends inside the segment ends there (libjpeg reads the missing bytes as the fake EOI
    // markers its data source supplies, then either refuses the segment or meets EOI, with
    // the coefficients decoded so far).
    macro_rules! segment {
        ($m:expr) => {
            match mk::segment(data, $m) {
                Ok(v) => v,
                Err(JpegError::Truncated { .. }) if st.lenient => {
                    return end_without_eoi(st, data.len())
                }
                Err(e) => return Err(e),
            }
        };
    }
    loop {
        let found = mk::next_marker(data, pos);
        if st.lenient {
            let to = found.map_or(data.len(), |m| m.offset);
            let bytes = discarded(data, pos, to);
            if bytes > 0 {
                let marker = found.map(|m| m.code);
                let kind = WarningKind::ExtraneousData { bytes, marker };
                st.warnings.push(kind, to, 0, None);
            }
        }
        let Some(m) = found else {
            if st.lenient {
                // libjpeg's data source supplies EOI at the end of the file.
                return end_without_eoi(st, data.len());
            }
            return Err(JpegError::Truncated {
                offset: data.len(),
                what: "no EOI marker",
            });
        };
        pos = m.offset + 2;
        match m.code {
            mk::EOI => return finish(st, m),
            mk::SOI => {
                return Err(JpegError::UnexpectedMarker {
                    offset: m.offset,
                    marker: m.code,
                    what: "second SOI",
                })
            }
            mk::SOF0 | mk::SOF1 | mk::SOF2 => {
                let (p, next) = segment!(m);
                pos = next;
                start_frame(&mut st, m, p, opts)?;
            }
            0xC3 => return Err(unsupported(m, "lossless coding (SOF3)")),
            0xC5..=0xC7 | 0xDE | 0xDF => return Err(unsupported(m, "hierarchical coding")),
            0xC9..=0xCB | 0xCD..=0xCF => return Err(unsupported(m, "arithmetic coding")),
            mk::DNL if st.lenient => {
                // libjpeg skips DNL ("perhaps the wrong thing"); the height is in the frame.
                st.warnings.push(WarningKind::IgnoredDnl, m.offset, 0, None);
                pos = segment!(m).1;
            }
            mk::DNL => return Err(unsupported(m, "DNL (height defined after the scan)")),
            mk::DHT => {
                let (p, next) = segment!(m);
                pos = next;
                for (class, id, table) in mk::parse_dht(m, p)? {
                    let slot = if class == 0 { &mut st.dc } else { &mut st.ac };
                    slot[usize::from(id)] = Some(table);
                }
            }
            mk::DQT => {
                let (p, next) = segment!(m);
                pos = next;
                for (id, q) in mk::parse_dqt(m, p)? {
                    st.quant[usize::from(id)] = Some(q);
                }
            }
            mk::DRI => {
                let (p, next) = segment!(m);
                pos = next;
                st.restart_interval = mk::parse_dri(m, p)?;
            }
            mk::SOS => {
                let (p, next) = segment!(m);
                st.scans += 1;
                if st.scans > opts.max_scans {
                    return Err(JpegError::TooManyScans {
                        offset: m.offset,
                        limit: opts.max_scans,
                    });
                }
                pos = if st.lenient {
                    scan::<true>(&mut st, m, p, data, next)?
                } else {
                    scan::<false>(&mut st, m, p, data, next)?
                };
            }
            // RSTn and TEM outside a scan carry no segment; libjpeg ignores them.
            0xD0..=0xD7 | 0x01 => {}
            // APPn, COM, DAC (arithmetic conditioning, unused here), JPG, JPGn: skipped.
            0xE0..=0xEF | 0xFE | 0xCC | 0xC8 | 0xF0..=0xFD => pos = segment!(m).1,
            _ => {
                return Err(JpegError::UnexpectedMarker {
                    offset: m.offset,
                    marker: m.code,
                    what: "reserved marker",
                })
            }
        }
    }
}

/// Lenient: the file ends (at `at`) without EOI; decoding ends as at EOI, with a warning.
fn end_without_eoi(mut st: State, at: usize) -> Result<Coefficients, JpegError> {
    st.warnings.push(WarningKind::MissingEoi, at, 0, None);
    finish(
        st,
        Marker {
            code: mk::EOI,
            offset: at,
        },
    )
}

/// The bytes libjpeg's `next_marker` discards from `from` to the marker at `to` (or the end
/// of the file): one for each byte other than `FF`, two for each `FF 00`; fill bytes `FF`
/// before the marker are not counted.
fn discarded(data: &[u8], from: usize, to: usize) -> usize {
    let mut n = 0;
    let mut p = from;
    while p < to {
        if data[p] != 0xFF {
            n += 1;
            p += 1;
            continue;
        }
        let mut q = p + 1;
        while q < data.len() && data[q] == 0xFF {
            q += 1;
        }
        if q < to && data[q] == 0 {
            n += 2;
        }
        p = q + 1;
    }
    n
}

fn unsupported(m: Marker, what: &str) -> JpegError {
    JpegError::Unsupported {
        offset: m.offset,
        what: what.into(),
    }
}

fn start_frame(st: &mut State, m: Marker, p: &[u8], opts: &DecodeOptions) -> Result<(), JpegError> {
    if st.frame.is_some() {
        return Err(JpegError::UnexpectedMarker {
            offset: m.offset,
            marker: m.code,
            what: "second frame header",
        });
    }
    let (header, tolerated) = mk::parse_sof(m, p, opts.lenient)?;
    for what in tolerated {
        st.warnings
            .push(WarningKind::Tolerated { what }, m.offset, 0, None);
    }
    let layout = FrameLayout::new(&header);
    let blocks = layout.storage_blocks();
    if blocks > opts.max_blocks {
        return Err(JpegError::TooLarge {
            blocks,
            limit: opts.max_blocks,
        });
    }
    let storage = layout
        .components
        .iter()
        .map(|c| allocate(c.stride * c.rows))
        .collect::<Result<Vec<_>, _>>()?;
    st.frame = Some(Frame {
        quant: vec![None; header.components.len()],
        header,
        layout,
        storage,
    });
    Ok(())
}

/// Decodes one scan whose header is `p` and whose entropy-coded data starts at `start`;
/// returns the offset after the data (the next marker).
fn scan<const L: bool>(
    st: &mut State,
    m: Marker,
    p: &[u8],
    data: &[u8],
    start: usize,
) -> Result<usize, JpegError> {
    let Some(frame) = st.frame.as_mut() else {
        return Err(JpegError::UnexpectedMarker {
            offset: m.offset,
            marker: m.code,
            what: "SOS before the frame header",
        });
    };
    let (sh, accepted): (ScanHeader, _) = mk::parse_sos(m, p, &frame.header, L)?;
    if let Some([ss, se, ah, al]) = accepted.not_sequential {
        let kind = WarningKind::NotSequential { ss, se, ah, al };
        st.warnings.push(kind, m.offset, st.scans, None);
    }
    for what in accepted.tolerated {
        st.warnings
            .push(WarningKind::Tolerated { what }, m.offset, st.scans, None);
    }
    // Latch the quantisation tables of the scan's components (libjpeg's latch_quant_tables).
    for sc in &sh.components {
        if frame.quant[sc.index].is_none() {
            let tq = frame.header.components[sc.index].tq;
            let q = st.quant.get(usize::from(tq)).copied().flatten();
            let q = q.ok_or(JpegError::MissingTable {
                offset: m.offset,
                kind: "quantisation",
                id: tq,
            })?;
            frame.quant[sc.index] = Some(q);
        }
    }
    let progressive = frame.header.process == Process::Progressive;
    let dc_needed = !progressive || (sh.ss == 0 && sh.ah == 0);
    let ac_needed = !progressive || sh.ss > 0;
    let mut dc: Vec<&HuffmanTable> = Vec::new();
    let mut ac: Vec<&HuffmanTable> = Vec::new();
    for sc in &sh.components {
        if dc_needed {
            let t = st
                .dc
                .get(usize::from(sc.td))
                .and_then(Option::as_ref)
                .ok_or(JpegError::MissingTable {
                    offset: m.offset,
                    kind: "DC Huffman",
                    id: sc.td,
                })?;
            // DC magnitude categories above 15 cannot be received (libjpeg refuses them).
            if t.max_symbol > 15 {
                return Err(JpegError::BadSegment {
                    offset: m.offset,
                    marker: m.code,
                    what: format!("DC Huffman table {} has a symbol above 15", sc.td),
                });
            }
            dc.push(t);
        }
        if ac_needed {
            ac.push(
                st.ac
                    .get(usize::from(sc.ta))
                    .and_then(Option::as_ref)
                    .ok_or(JpegError::MissingTable {
                        offset: m.offset,
                        kind: "AC Huffman",
                        id: sc.ta,
                    })?,
            );
        }
    }
    let mut br = BitReader::new(data, start);
    let (layout, storage, ri) = (&frame.layout, &mut frame.storage, st.restart_interval);
    let (ss, se, al) = (usize::from(sh.ss), usize::from(sh.se), u32::from(sh.al));
    let band = (ss, se, al);
    let scan_no = st.scans;
    let lw = if L {
        Some(Lenient {
            warnings: &mut st.warnings,
            scan: scan_no,
        })
    } else {
        None
    };
    if !progressive {
        decode_mcus::<L, _>(layout, &sh, storage, &mut br, ri, lw, |br, s, i, b| {
            sequential::decode_block::<L>(br, dc[i], ac[i], &mut s.pred[i], b)
        })?;
    } else if ss == 0 && sh.ah == 0 {
        decode_mcus::<L, _>(layout, &sh, storage, &mut br, ri, lw, |br, s, i, b| {
            progressive::dc_first::<L>(br, dc[i], &mut s.pred[i], al, b)
        })?;
    } else if ss == 0 {
        decode_mcus::<L, _>(layout, &sh, storage, &mut br, ri, lw, |br, _, _, b| {
            progressive::dc_refine(br, al, b);
            Ok(())
        })?;
    } else if sh.ah == 0 {
        decode_mcus::<L, _>(layout, &sh, storage, &mut br, ri, lw, |br, s, _, b| {
            progressive::ac_first::<L>(br, ac[0], s, band, b)
        })?;
    } else {
        decode_mcus::<L, _>(layout, &sh, storage, &mut br, ri, lw, |br, s, _, b| {
            progressive::ac_refine::<L>(br, ac[0], s, band, b)
        })?;
    }
    Ok(br.end_offset())
}

fn finish(st: State, m: Marker) -> Result<Coefficients, JpegError> {
    let mut warnings = st.warnings;
    let Some(frame) = st.frame else {
        return Err(JpegError::UnexpectedMarker {
            offset: m.offset,
            marker: m.code,
            what: "EOI before any frame",
        });
    };
    if st.scans == 0 {
        return Err(JpegError::UnexpectedMarker {
            offset: m.offset,
            marker: m.code,
            what: "EOI before any scan",
        });
    }
    let mut components = Vec::with_capacity(frame.header.components.len());
    for (i, (mut data, c)) in frame
        .storage
        .into_iter()
        .zip(&frame.layout.components)
        .enumerate()
    {
        let fc = frame.header.components[i];
        // A component that no scan carried keeps zero coefficients and the table it names
        // (lenient: zeros if there is none, as jpeglib reports it; libjpeg needs the table
        // only for a scan).
        let named = st.quant.get(usize::from(fc.tq)).copied().flatten();
        let quant = match frame.quant[i].or(named) {
            Some(q) => q,
            None if st.lenient => {
                let what = format!(
                    "component {} names quantisation table {}, never defined (no scan carries \
                     the component; table reported as zeros)",
                    fc.id, fc.tq
                );
                warnings.push(WarningKind::Tolerated { what }, m.offset, 0, None);
                [0; 64]
            }
            None => {
                return Err(JpegError::MissingTable {
                    offset: m.offset,
                    kind: "quantisation",
                    id: fc.tq,
                })
            }
        };
        // Crop the MCU padding: keep blocks_h rows of blocks_w blocks.
        if c.stride != c.blocks_w {
            for r in 0..c.blocks_h {
                data.copy_within(
                    r * c.stride * 64..(r * c.stride + c.blocks_w) * 64,
                    r * c.blocks_w * 64,
                );
            }
        }
        data.truncate(c.blocks_h * c.blocks_w * 64);
        data.shrink_to_fit();
        components.push(ComponentCoefficients {
            id: fc.id,
            h: fc.h,
            v: fc.v,
            quant_table: fc.tq,
            quant,
            blocks_w: c.blocks_w,
            blocks_h: c.blocks_h,
            coefs: data,
        });
    }
    Ok(Coefficients {
        width: u32::from(frame.header.width),
        height: u32::from(frame.header.height),
        process: frame.header.process,
        hmax: frame.layout.hmax as u8,
        vmax: frame.layout.vmax as u8,
        components,
        warnings: warnings.finish(),
    })
}
