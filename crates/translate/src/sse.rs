//! Server-sent events in and out.
//!
//! [`Reader`] splits an upstream body into SSE fields as chunks arrive, however the chunks cut
//! the lines. Each `data:` line is handed on as soon as its newline arrives: every upstream
//! Keyway translates puts one whole JSON document on one `data:` line, so waiting for the
//! blank line that ends the event would only add latency (and would break on servers that
//! leave the blank line out). The `event:` name seen before it comes along.

use serde::Serialize;

/// Longest SSE line kept while waiting for its end. An upstream line longer than this is not
/// translated: the stream ends with an error event instead (see `StreamTranslator`).
pub const MAX_LINE: usize = 8 * 1024 * 1024;

/// Splits an SSE body into `(event name, data)` pairs.
#[derive(Debug, Default)]
pub struct Reader {
    /// The unfinished last line of the chunks so far.
    partial: Vec<u8>,
    /// The `event:` field of the event being read, if any.
    event: String,
}

/// A line outgrew [`MAX_LINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

impl Reader {
    /// Reads one chunk, calling `on_data` for every complete `data:` line in it.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_data: impl FnMut(&str, &[u8]),
    ) -> Result<(), Overflow> {
        let mut rest = chunk;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let head = &rest[..end];
            rest = &rest[end + 1..];
            if self.partial.is_empty() {
                self.line(head, &mut on_data);
            } else {
                if self.partial.len() + head.len() > MAX_LINE {
                    return Err(Overflow);
                }
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.line(&line, &mut on_data);
                line.clear();
                self.partial = line;
            }
        }
        if self.partial.len() + rest.len() > MAX_LINE {
            return Err(Overflow);
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// The body ended: a last line without its newline still counts.
    pub fn finish(&mut self, mut on_data: impl FnMut(&str, &[u8])) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, &mut on_data);
        }
    }

    fn line(&mut self, line: &[u8], on_data: &mut impl FnMut(&str, &[u8])) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.event.clear();
        } else if let Some(data) = line.strip_prefix(b"data:") {
            let data = data.strip_prefix(b" ").unwrap_or(data);
            on_data(&self.event, data);
        } else if let Some(name) = line.strip_prefix(b"event:") {
            let name = name.strip_prefix(b" ").unwrap_or(name);
            self.event.clear();
            self.event.push_str(&String::from_utf8_lossy(name));
        }
        // Comments (`:`), `id:` and `retry:` lines carry nothing to translate.
    }
}

/// Appends `event: <name>` and `data: <json>` and the blank line that ends an event.
pub fn write_event(out: &mut Vec<u8>, name: &str, value: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    write_data(out, value);
}

/// Appends `data: <json>` and the blank line that ends an event.
pub fn write_data(out: &mut Vec<u8>, value: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    crate::json::write(out, value);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut reader = Reader::default();
        let mut seen = Vec::new();
        for chunk in chunks {
            reader
                .feed(chunk, |event, data| {
                    seen.push((event.to_owned(), String::from_utf8_lossy(data).into_owned()))
                })
                .expect("no overflow");
        }
        reader.finish(|event, data| {
            seen.push((event.to_owned(), String::from_utf8_lossy(data).into_owned()))
        });
        seen
    }

    #[test]
    fn lines_split_anywhere_give_the_same_events() {
        let body = b"event: a\r\ndata: {\"x\":1}\r\n\r\n: comment\ndata:{\"y\":2}\n\ndata: [DONE]";
        let whole = read_all(&[body]);
        assert_eq!(
            whole,
            vec![
                ("a".to_owned(), "{\"x\":1}".to_owned()),
                (String::new(), "{\"y\":2}".to_owned()),
                (String::new(), "[DONE]".to_owned()),
            ]
        );
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(read_all(&bytes), whole);
        for cut in 1..body.len() {
            assert_eq!(read_all(&[&body[..cut], &body[cut..]]), whole);
        }
    }

    #[test]
    fn an_overlong_line_is_refused() {
        let mut reader = Reader::default();
        let big = vec![b'a'; MAX_LINE / 2 + 1];
        assert!(reader.feed(&big, |_, _| {}).is_ok());
        assert_eq!(reader.feed(&big, |_, _| {}), Err(Overflow));
    }
}
