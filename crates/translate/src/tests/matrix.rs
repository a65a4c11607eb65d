//! Every translated pair, streamed: an upstream's documented text and tool-call streams, read
//! back the way each client's SDK accumulates its grammar, give the same answer; and each
//! pair's upstream errors reach the client in its shape with their status.

use serde_json::{Value, json};

use super::fixtures::*;
use super::{GEMINI_STREAM, Sse, context, stream_events};
use crate::{ClientSurface, UpstreamFormat, needs_translation};

/// What a client ends up with: its text, its tool calls (name, arguments) and how it ended.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    text: String,
    calls: Vec<(String, Value)>,
    tool_stop: bool,
}

fn parse(args: &str) -> Value {
    serde_json::from_str(args).unwrap_or_else(|_| panic!("arguments are JSON: {args:?}"))
}

/// Accumulates a client stream the way its SDK does.
fn accumulate(client: ClientSurface, events: &[Sse]) -> Answer {
    let mut answer = Answer::default();
    match client {
        ClientSurface::Messages => {
            let mut blocks: Vec<(String, String, String)> = Vec::new(); // (type, name, json)
            for e in events {
                let d = &e.data;
                match e.event.as_deref() {
                    Some("content_block_start") => {
                        let block = &d["content_block"];
                        let name = block["name"].as_str().unwrap_or_default().to_owned();
                        blocks.push((
                            block["type"].as_str().unwrap().to_owned(),
                            name,
                            String::new(),
                        ));
                    }
                    Some("content_block_delta") => {
                        let index = d["index"].as_u64().unwrap() as usize;
                        let delta = &d["delta"];
                        match delta["type"].as_str().unwrap() {
                            "text_delta" => answer.text.push_str(delta["text"].as_str().unwrap()),
                            "input_json_delta" => blocks[index]
                                .2
                                .push_str(delta["partial_json"].as_str().unwrap()),
                            _ => {}
                        }
                    }
                    Some("message_delta") => {
                        answer.tool_stop = d["delta"]["stop_reason"] == "tool_use";
                    }
                    _ => {}
                }
            }
            for (kind, name, json) in blocks {
                if kind == "tool_use" {
                    answer
                        .calls
                        .push((name, parse(if json.is_empty() { "{}" } else { &json })));
                }
            }
        }
        ClientSurface::Chat => {
            let mut calls: Vec<(String, String)> = Vec::new();
            for e in events {
                let Some(choice) = e.data["choices"].get(0) else {
                    continue;
                };
                let delta = &choice["delta"];
                if let Some(text) = delta["content"].as_str() {
                    answer.text.push_str(text);
                }
                for call in delta["tool_calls"].as_array().into_iter().flatten() {
                    let index = call["index"].as_u64().unwrap() as usize;
                    if calls.len() <= index {
                        calls.push((
                            call["function"]["name"].as_str().unwrap().to_owned(),
                            String::new(),
                        ));
                    }
                    calls[index]
                        .1
                        .push_str(call["function"]["arguments"].as_str().unwrap_or_default());
                }
                if choice["finish_reason"] == "tool_calls" {
                    answer.tool_stop = true;
                }
            }
            answer.calls = calls.into_iter().map(|(n, a)| (n, parse(&a))).collect();
        }
        ClientSurface::Responses => {
            let completed = events
                .iter()
                .find(|e| e.event.as_deref() == Some("response.completed"))
                .expect("response.completed");
            for item in completed.data["response"]["output"].as_array().unwrap() {
                match item["type"].as_str().unwrap() {
                    "message" => answer
                        .text
                        .push_str(item["content"][0]["text"].as_str().unwrap()),
                    "function_call" => {
                        answer.tool_stop = true;
                        answer.calls.push((
                            item["name"].as_str().unwrap().to_owned(),
                            parse(item["arguments"].as_str().unwrap()),
                        ));
                    }
                    _ => {}
                }
            }
        }
        ClientSurface::Gemini(_) => {
            for e in events {
                for part in e.data["candidates"][0]["content"]["parts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let Some(call) = part.get("functionCall") {
                        answer.tool_stop = true;
                        answer.calls.push((
                            call["name"].as_str().unwrap().to_owned(),
                            call["args"].clone(),
                        ));
                    } else if part["thought"] != true {
                        answer
                            .text
                            .push_str(part["text"].as_str().unwrap_or_default());
                    }
                }
            }
        }
        ClientSurface::CountTokens => unreachable!(),
    }
    answer
}

const CLIENTS: [ClientSurface; 4] = [
    ClientSurface::Messages,
    ClientSurface::Chat,
    ClientSurface::Responses,
    GEMINI_STREAM,
];

fn pairs() -> impl Iterator<Item = (ClientSurface, UpstreamFormat)> {
    CLIENTS.into_iter().flat_map(|client| {
        [
            UpstreamFormat::Anthropic,
            UpstreamFormat::OpenAi,
            UpstreamFormat::Gemini,
        ]
        .into_iter()
        .filter(move |upstream| needs_translation(client, *upstream))
        .map(move |upstream| (client, upstream))
    })
}

#[test]
fn there_are_eight_translated_pairs() {
    assert_eq!(pairs().count(), 8);
}

#[test]
fn every_pair_streams_text() {
    for (client, upstream) in pairs() {
        let (body, text) = match upstream {
            UpstreamFormat::Anthropic => (ANTHROPIC_TEXT_STREAM, "Hello!"),
            UpstreamFormat::OpenAi => (OPENAI_TEXT_STREAM, "Hello there"),
            UpstreamFormat::Gemini => (GEMINI_TEXT_STREAM, "The sky is blue."),
        };
        let events = stream_events(&context(client, upstream), body);
        let answer = accumulate(client, &events);
        assert_eq!(answer.text, text, "{client:?} ← {upstream:?}");
        assert!(
            answer.calls.is_empty() && !answer.tool_stop,
            "{client:?} ← {upstream:?}"
        );
    }
}

#[test]
fn every_pair_streams_tool_calls() {
    let weather = |location: &str| ("get_weather".to_owned(), json!({"location": location}));
    for (client, upstream) in pairs() {
        let (body, calls) = match upstream {
            UpstreamFormat::Anthropic => {
                (ANTHROPIC_TOOL_STREAM, vec![weather("San Francisco, CA")])
            }
            UpstreamFormat::OpenAi => (
                OPENAI_TOOL_STREAM,
                vec![weather("Paris, France"), weather("Bogotá, Colombia")],
            ),
            UpstreamFormat::Gemini => (
                GEMINI_TOOL_STREAM,
                vec![weather("Paris"), weather("London")],
            ),
        };
        let events = stream_events(&context(client, upstream), body);
        let answer = accumulate(client, &events);
        assert_eq!(answer.calls, calls, "{client:?} ← {upstream:?}");
        assert!(
            answer.tool_stop,
            "{client:?} ← {upstream:?} ends as a tool stop"
        );
    }
}

#[test]
fn every_pair_passes_upstream_errors_on_with_their_status() {
    for (client, upstream) in pairs() {
        let (body, status) = match upstream {
            UpstreamFormat::Anthropic => (ANTHROPIC_ERROR, 404),
            UpstreamFormat::OpenAi => (OPENAI_ERROR, 401),
            UpstreamFormat::Gemini => (GEMINI_ERROR, 429),
        };
        let translated = crate::response(status, body.as_bytes(), &context(client, upstream));
        assert_eq!(translated.status, status, "{client:?} ← {upstream:?}");
        let json: Value = serde_json::from_slice(&translated.body).unwrap();
        let message = match client {
            ClientSurface::Messages => {
                assert_eq!(json["type"], "error");
                &json["error"]["message"]
            }
            ClientSurface::Chat | ClientSurface::Responses => {
                assert!(json["error"]["type"].is_string());
                &json["error"]["message"]
            }
            _ => {
                assert_eq!(json["error"]["code"], status);
                &json["error"]["message"]
            }
        };
        let message = message.as_str().unwrap();
        assert!(message.starts_with(&format!("{} upstream: ", upstream.as_str())));
        assert!(!message.contains("AbCdEf"), "{message}");
    }
}
