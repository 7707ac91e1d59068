//! The decoding process up to the quantised coefficients (T.81 E.2.1 for sequential,
//! G.2 for progressive frames, without the IDCT): markers in order, tables as they are
//! defined, each scan decoded into the coefficient buffers of its components.

use super::bitreader::BitReader;
use super::error::JpegError;
use super::huffman::HuffmanTable;
use super::layout::FrameLayout;
use super::markers::{self as mk, FrameHeader, Marker, Process, ScanHeader};
use super::restart::decode_mcus;
use super::{progressive, sequential, Coefficients, ComponentCoefficients, DecodeOptions};

/// Decoder state between markers.
struct State {
    dc: [Option<HuffmanTable>; 4],
    ac: [Option<HuffmanTable>; 4],
    quant: [Option<[u16; 64]>; 4],
    restart_interval: u16,
    frame: Option<Frame>,
    scans: u32,
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
    };
    let mut pos = 2;
    loop {
        let Some(m) = mk::next_marker(data, pos) else {
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
                let (p, next) = mk::segment(data, m)?;
                pos = next;
                start_frame(&mut st, m, p, opts)?;
            }
            0xC3 => return Err(unsupported(m, "lossless coding (SOF3)")),
            0xC5..=0xC7 | 0xDE | 0xDF => return Err(unsupported(m, "hierarchical coding")),
            0xC9..=0xCB | 0xCD..=0xCF => return Err(unsupported(m, "arithmetic coding")),
            mk::DNL => return Err(unsupported(m, "DNL (height defined after the scan)")),
            mk::DHT => {
                let (p, next) = mk::segment(data, m)?;
                pos = next;
                for (class, id, table) in mk::parse_dht(m, p)? {
                    let slot = if class == 0 { &mut st.dc } else { &mut st.ac };
                    slot[usize::from(id)] = Some(table);
                }
            }
            mk::DQT => {
                let (p, next) = mk::segment(data, m)?;
                pos = next;
                for (id, q) in mk::parse_dqt(m, p)? {
                    st.quant[usize::from(id)] = Some(q);
                }
            }
            mk::DRI => {
                let (p, next) = mk::segment(data, m)?;
                pos = next;
                st.restart_interval = mk::parse_dri(m, p)?;
            }
            mk::SOS => {
                let (p, next) = mk::segment(data, m)?;
                st.scans += 1;
                if st.scans > opts.max_scans {
                    return Err(JpegError::TooManyScans {
                        offset: m.offset,
                        limit: opts.max_scans,
                    });
                }
                pos = scan(&mut st, m, p, data, next)?;
            }
            // RSTn and TEM outside a scan carry no segment; libjpeg ignores them.
            0xD0..=0xD7 | 0x01 => {}
            // APPn, COM, DAC (arithmetic conditioning, unused here), JPG, JPGn: skipped.
            0xE0..=0xEF | 0xFE | 0xCC | 0xC8 | 0xF0..=0xFD => {
                let (_, next) = mk::segment(data, m)?;
                pos = next;
            }
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
    let header = mk::parse_sof(m, p)?;
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
fn scan(
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
    let sh: ScanHeader = mk::parse_sos(m, p, &frame.header)?;
    // Latch the quantisation tables of the scan's components (libjpeg's latch_quant_tables).
    for sc in &sh.components {
        if frame.quant[sc.index].is_none() {
            let tq = frame.header.components[sc.index].tq;
            let q = st.quant[usize::from(tq)].ok_or(JpegError::MissingTable {
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
            let t = st.dc[usize::from(sc.td)]
                .as_ref()
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
                st.ac[usize::from(sc.ta)]
                    .as_ref()
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
    if !progressive {
        decode_mcus(layout, &sh, storage, &mut br, ri, |br, s, i, b| {
            sequential::decode_block(br, dc[i], ac[i], &mut s.pred[i], b)
        })?;
    } else if ss == 0 && sh.ah == 0 {
        decode_mcus(layout, &sh, storage, &mut br, ri, |br, s, i, b| {
            progressive::dc_first(br, dc[i], &mut s.pred[i], al, b)
        })?;
    } else if ss == 0 {
        decode_mcus(layout, &sh, storage, &mut br, ri, |br, _, _, b| {
            progressive::dc_refine(br, al, b);
            Ok(())
        })?;
    } else if sh.ah == 0 {
        decode_mcus(layout, &sh, storage, &mut br, ri, |br, s, _, b| {
            progressive::ac_first(br, ac[0], s, band, b)
        })?;
    } else {
        decode_mcus(layout, &sh, storage, &mut br, ri, |br, s, _, b| {
            progressive::ac_refine(br, ac[0], s, band, b)
        })?;
    }
    Ok(br.end_offset())
}

fn finish(st: State, m: Marker) -> Result<Coefficients, JpegError> {
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
        // A component that no scan carried keeps zero coefficients and the table it names.
        let quant =
            frame.quant[i]
                .or(st.quant[usize::from(fc.tq)])
                .ok_or(JpegError::MissingTable {
                    offset: m.offset,
                    kind: "quantisation",
                    id: fc.tq,
                })?;
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
    })
}
