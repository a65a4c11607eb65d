//! A client's request from arrival to the last byte: the thin handlers ([`routes`]), reading
//! the model ([`classify`]), the attempt loop ([`forward`]) with the provider adapters
//! ([`adapter`]), what an upstream says about resets and quota ([`cooldown`], [`quota`]), the
//! response relay ([`relay`]) with the headers Keyway adds ([`own_headers`]), Keyway's own
//! errors in each surface's shape ([`surface`]) and the merged model list ([`models`]).

pub mod adapter;
pub mod chain;
pub mod classify;
pub mod cooldown;
pub mod forward;
pub mod models;
pub mod own_headers;
pub mod quota;
pub mod relay;
pub mod rewrite;
pub mod routes;
pub mod sessions;
pub mod surface;
pub mod translation;
