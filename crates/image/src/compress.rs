//! Layer compression, recognised by magic bytes rather than trusted from media types (Docker
//! does the same: registries and archives mislabel layers often enough).

use std::io::{BufRead, BufReader, Read};

/// A compression format of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (also several concatenated members, as pigz writes).
    Gzip,
    /// zstd.
    Zstd,
}

/// Recognises the format from the first bytes.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps a reader so it yields the uncompressed tar, whatever the blob's format.
pub fn decompress<'a, R: Read + Send + 'a>(
    reader: R,
) -> std::io::Result<Box<dyn Read + Send + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let kind = detect(buffered.fill_buf()?);
    Ok(match kind {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    })
}

/// As [`decompress`], and also bzip2 and xz: the formats of the archives Docker's `ADD`
/// unpacks (its `DecompressStream`). Not for layers: OCI has no media type for those two.
pub fn decompress_archive<'a, R: Read + Send + 'a>(
    reader: R,
) -> std::io::Result<Box<dyn Read + Send + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered.fill_buf()?;
    if head.starts_with(b"BZh") {
        return Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Ok(Box::new(xz2::bufread::XzDecoder::new_multi_decoder(
            buffered,
        )));
    }
    decompress(buffered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_format_round_trips() {
        let data = b"some tar bytes".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&data).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        let xz = xz.finish().unwrap();
        let all = |mut r: Box<dyn Read + Send + '_>| {
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            out
        };
        for blob in [&data, &gz, &zst, &bz, &xz] {
            assert_eq!(all(decompress_archive(&blob[..]).unwrap()), data);
        }
        for blob in [&bz, &xz] {
            // Not a layer format: read as a plain tar, which it is not.
            assert_eq!(&all(decompress(&blob[..]).unwrap()), blob);
        }
        for blob in [data.clone(), gz, zst] {
            let mut out = Vec::new();
            decompress(&blob[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
    }
}
