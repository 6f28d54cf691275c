//! QR codes of the complete Provision URL, as SVG and PNG (feature `qr`).

use qrcode::{EcLevel, QrCode};

use crate::transport::QrImage;

/// Pixels per QR module in the PNG.
const SCALE: usize = 6;
/// Quiet zone, in modules.
const QUIET: usize = 4;

/// Renders `text` as a QR code (error correction M). `None` when the text is too long for a
/// QR code.
pub fn render(text: &str) -> Option<QrImage> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let png = png_of(&code)?;
    Some(QrImage { svg, png })
}

fn png_of(code: &QrCode) -> Option<Vec<u8>> {
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % width + QUIET, i / width + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().ok()?;
        writer.write_image_data(&pixels).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_svg_and_png() {
        let img = super::render("https://auth.example.com/smc/complete/?site=DEMO&code=1234567890")
            .unwrap();
        assert!(img.svg.contains("<svg"));
        assert_eq!(&img.png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(&img.png));
        let reader = decoder.read_info().unwrap();
        assert!(reader.info().width >= 21 * 6);
    }
}
