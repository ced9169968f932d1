//! What a replay shows: as text tables ([`text`]), as one JSON object ([`json`]), and two
//! replays side by side ([`compare`]). The engine keeps the figures; these only lay them out.

use std::time::Duration;

use serde_json::Value;

pub mod compare;
pub mod json;
pub mod text;

/// `m:ss` from the trace's start.
pub fn clock_time(at: Duration) -> String {
    let s = at.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// An age such as `45s`, `4m05s` or `3h07m`, to the nearest second.
pub fn age(d: Duration) -> String {
    let s = d.saturating_add(Duration::from_millis(500)).as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    }
}

/// JSON as the tool prints it: indented, with a final newline.
pub fn pretty(json: &Value) -> String {
    let mut text = serde_json::to_string_pretty(json).expect("JSON values serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::json::render_json;
    use super::text::render_text;
    use crate::engine::testing::*;

    #[test]
    fn text_and_json_show_the_same_table() {
        let (replay, bad) = replay(DEFAULT_TRACE, Some("node-007"));
        let text = render_text(&replay, "test", replay.explain.as_ref());
        let json = render_json(&replay, "test", &bad);
        let peers = json["peers"].as_array().unwrap();
        assert_eq!(peers.len(), replay.table().len());
        assert!(
            text.contains("IPv6 preferred"),
            "node-007's switch is explained"
        );
        for peer in peers {
            let short = &peer["public_key"].as_str().unwrap()[..8];
            assert!(text.contains(short));
        }
        assert!(json["decisions"].as_array().is_some_and(|d| !d.is_empty()));
    }
}
