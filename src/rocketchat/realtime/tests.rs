//! Tests of the realtime loop against a scripted websocket server.
