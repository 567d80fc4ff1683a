//! An RGB pixel canvas without antialiasing: pixels, lines (Bresenham), rectangles and
//! 8×8 bitmap text (`font8x8`), encoded as PNG. Every pixel is either drawn or not, so
//! two charts drawn from the same points compare pixel for pixel.

use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Width of one character of text, in pixels.
pub const CHAR_W: u32 = 8;
/// Height of one line of text, in pixels.
pub const LINE_H: u32 = 10;

/// An RGB image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    width: u32,
    height: u32,
    /// Row by row, 3 bytes per pixel.
    pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb) -> Canvas {
        let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
        for _ in 0..width as usize * height as usize {
            pixels.extend_from_slice(&background);
        }
        Canvas {
            width,
            height,
            pixels,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, row by row, 3 bytes each.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The colour at `(x, y)`, `None` outside.
    pub fn get(&self, x: i64, y: i64) -> Option<Rgb> {
        self.offset(x, y).map(|i| {
            let p = &self.pixels[i..i + 3];
            [p[0], p[1], p[2]]
        })
    }

    fn offset(&self, x: i64, y: i64) -> Option<usize> {
        (x >= 0 && y >= 0 && x < self.width as i64 && y < self.height as i64)
            .then(|| (y as usize * self.width as usize + x as usize) * 3)
    }

    /// Sets one pixel (ignored outside).
    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if let Some(i) = self.offset(x, y) {
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fills the rectangle `[x, x + w) × [y, y + h)` (clipped).
    pub fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        for yy in y.max(0)..(y + h).min(self.height as i64) {
            for xx in x.max(0)..(x + w).min(self.width as i64) {
                self.set(xx, yy, c);
            }
        }
    }

    /// A vertical line from `y0` to `y1` (both included, any order).
    pub fn vline(&mut self, x: i64, y0: i64, y1: i64, c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            self.set(x, y, c);
        }
    }

    /// A line from `(x0, y0)` to `(x1, y1)`, both ends included (Bresenham; the same
    /// pixels whichever end comes first).
    pub fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        // Always draw from the left (then the top) end, so a line is one set of pixels.
        let ((x0, y0), (x1, y1)) = if (x0, y0) <= (x1, y1) {
            ((x0, y0), (x1, y1))
        } else {
            ((x1, y1), (x0, y0))
        };
        let dx = (x1 - x0).abs();
        let dy = -(y1 - y0).abs();
        let sx = if x0 < x1 { 1 } else { -1 };
        let sy = if y0 < y1 { 1 } else { -1 };
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Writes `text` with its top-left corner at `(x, y)`, 8 pixels per character;
    /// characters outside ASCII and Latin-1 are drawn as `?`.
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb) {
        for (i, ch) in text.chars().enumerate() {
            let glyph = glyph(ch);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.set(x + i as i64 * CHAR_W as i64 + col, y + row as i64, c);
                    }
                }
            }
        }
    }

    /// The canvas as a PNG file.
    ///
    /// # Errors
    /// [`png::EncodingError`] (only on a bug: the image is always well formed).
    pub fn to_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header()?;
            w.write_image_data(&self.pixels)?;
        }
        Ok(out)
    }

    /// Reads an 8-bit RGB or RGBA PNG (alpha dropped), for comparing charts.
    ///
    /// # Errors
    /// [`png::DecodingError`] when the bytes are not such a PNG.
    pub fn from_png(bytes: &[u8]) -> Result<Canvas, png::DecodingError> {
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes)).read_info()?;
        let size = dec.output_buffer_size().unwrap_or(0);
        let mut buf = vec![0; size];
        let info = dec.next_frame(&mut buf)?;
        let per = match info.color_type {
            png::ColorType::Rgba => 4,
            _ => 3,
        };
        let mut pixels = Vec::with_capacity(info.width as usize * info.height as usize * 3);
        for px in buf[..info.buffer_size()].chunks(per) {
            pixels.extend_from_slice(&px[..3]);
        }
        Ok(Canvas {
            width: info.width,
            height: info.height,
            pixels,
        })
    }
}

/// The 8×8 glyph of `ch` (bit `i` of row `r` is the pixel `(i, r)`).
fn glyph(ch: char) -> [u8; 8] {
    let c = ch as u32;
    match c {
        0x20..=0x7e => BASIC_LEGACY[c as usize],
        0xa0..=0xff => LATIN_LEGACY[(c - 0xa0) as usize],
        _ => BASIC_LEGACY[b'?' as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Rgb = [0, 0, 0];

    fn drawn(c: &Canvas) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for y in 0..c.height() as i64 {
            for x in 0..c.width() as i64 {
                if c.get(x, y) == Some(B) {
                    out.push((x, y));
                }
            }
        }
        out
    }

    #[test]
    fn lines_are_the_same_either_way() {
        for (a, b) in [
            ((0, 0), (9, 4)),
            ((2, 9), (7, 0)),
            ((3, 3), (3, 8)),
            ((0, 5), (9, 5)),
        ] {
            let mut one = Canvas::new(10, 10, [255; 3]);
            let mut two = one.clone();
            one.line(a.0, a.1, b.0, b.1, B);
            two.line(b.0, b.1, a.0, a.1, B);
            assert_eq!(one, two);
            let px = drawn(&one);
            assert!(px.contains(&a) && px.contains(&b));
            let n = (a.0 - b.0).abs().max((a.1 - b.1).abs()) + 1;
            assert_eq!(px.len() as i64, n, "one pixel per step, no gaps or doubles");
        }
    }

    #[test]
    fn png_round_trips() {
        let mut c = Canvas::new(30, 12, [255; 3]);
        c.text(1, 1, "°C x", B);
        c.line(0, 11, 29, 0, [200, 0, 0]);
        let back = Canvas::from_png(&c.to_png().unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(drawn(&c).len() > 10, "the text was drawn");
    }
}
