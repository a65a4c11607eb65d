//! `StreamTranslator`: an upstream SSE body in, the client's SSE grammar out, chunk by chunk.

use bytes::Bytes;

use crate::ir::Event;
use crate::{
    ClientSurface, ErrorKind, ResponseContext, UpstreamError, UpstreamFormat, anthropic, chat,
    gemini, responses, sse,
};

/// Translates one streamed answer as it arrives.
///
/// Feed it every chunk of the upstream's body in order; send what each call returns to the
/// client right away (it may be empty). Chunks may cut lines anywhere. Nothing waits for the
/// end of the answer: each upstream event becomes client events as soon as its line is
/// complete. What is held between chunks is bounded: the unfinished line (at most
/// [`crate::MAX_LINE`]), a Gemini client's function call until it ends (at most 4 MiB of
/// arguments), and for a Responses client the finished output, which its `response.completed`
/// event repeats.
///
/// When the upstream's body ends, call [`StreamTranslator::finish`]: if the upstream never
/// sent its final event, the client gets an error event in its grammar rather than a
/// silently truncated answer. After the final event (or an error), further input is ignored.
pub struct StreamTranslator {
    reader: sse::Reader,
    parser: Parser,
    renderer: Renderer,
    events: Vec<Event>,
    /// A finish or an error has been written: the stream is over for the client.
    ended: bool,
}

enum Parser {
    Anthropic(anthropic::upstream::StreamParser),
    OpenAi(chat::upstream::StreamParser),
    Gemini(gemini::upstream::StreamParser),
}

enum Renderer {
    Messages(anthropic::client::StreamRenderer),
    Chat(chat::client::StreamRenderer),
    Responses(responses::StreamRenderer),
    Gemini(gemini::client::StreamRenderer),
}

impl StreamTranslator {
    /// A translator for the answer to the request that produced `context`.
    pub fn new(context: &ResponseContext) -> Self {
        let parser = match context.upstream {
            UpstreamFormat::Anthropic => Parser::Anthropic(Default::default()),
            UpstreamFormat::OpenAi => Parser::OpenAi(Default::default()),
            UpstreamFormat::Gemini => {
                Parser::Gemini(gemini::upstream::StreamParser::new(&context.token))
            }
        };
        let renderer = match context.client {
            ClientSurface::Messages | ClientSurface::CountTokens => {
                Renderer::Messages(anthropic::client::StreamRenderer::new(context))
            }
            ClientSurface::Chat => Renderer::Chat(chat::client::StreamRenderer::new(context)),
            ClientSurface::Responses => {
                Renderer::Responses(responses::StreamRenderer::new(context))
            }
            ClientSurface::Gemini(_) => {
                Renderer::Gemini(gemini::client::StreamRenderer::new(context))
            }
        };
        StreamTranslator {
            reader: sse::Reader::default(),
            parser,
            renderer,
            events: Vec::new(),
            ended: false,
        }
    }

    /// The client bytes for the next chunk of the upstream's body.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        if self.ended {
            return Bytes::new();
        }
        let Self {
            reader,
            parser,
            events,
            ..
        } = self;
        let read = reader.feed(chunk, |_, data| parser.data(data, events));
        if read.is_err() {
            let message = format!(
                "an upstream event was longer than {} MiB and could not be translated",
                sse::MAX_LINE / (1024 * 1024)
            );
            self.events.push(Event::Error(UpstreamError::keyway(
                ErrorKind::Server,
                &message,
            )));
        }
        self.render(chunk.len())
    }

    /// The client bytes that close the stream once the upstream's body has ended.
    pub fn finish(&mut self) -> Bytes {
        if self.ended {
            return Bytes::new();
        }
        let Self {
            reader,
            parser,
            events,
            ..
        } = self;
        reader.finish(|_, data| parser.data(data, events));
        if let Parser::OpenAi(parser) = &mut self.parser {
            parser.end(&mut self.events);
        }
        let mut out = self.render(0).to_vec();
        if !self.ended {
            let error = UpstreamError::keyway(
                ErrorKind::Server,
                "the upstream ended its stream before its last event",
            );
            self.renderer.event(Event::Error(error), &mut out);
            self.ended = true;
        }
        Bytes::from(out)
    }

    fn render(&mut self, hint: usize) -> Bytes {
        let mut out = Vec::with_capacity(hint.saturating_mul(2).max(256));
        for event in self.events.drain(..) {
            if self.ended {
                break;
            }
            let last = matches!(event, Event::Finish { .. } | Event::Error(_));
            self.renderer.event(event, &mut out);
            self.ended = last;
        }
        self.events.clear();
        Bytes::from(out)
    }
}

impl Parser {
    fn data(&mut self, data: &[u8], out: &mut Vec<Event>) {
        match self {
            Parser::Anthropic(p) => p.data(data, out),
            Parser::OpenAi(p) => p.data(data, out),
            Parser::Gemini(p) => p.data(data, out),
        }
    }
}

impl Renderer {
    fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        match self {
            Renderer::Messages(r) => r.event(event, out),
            Renderer::Chat(r) => r.event(event, out),
            Renderer::Responses(r) => r.event(event, out),
            Renderer::Gemini(r) => r.event(event, out),
        }
    }
}
