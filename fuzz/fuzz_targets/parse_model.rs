//! Fuzz the positioned JSON parser and the strict loader, and check the
//! parser against serde_json. Run: `cargo fuzz run parse_model`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let ours = hke::model::json::parse(text);
    let theirs = serde_json::from_str::<serde_json::Value>(text.trim_start_matches('\u{feff}'));
    if let (Ok(a), Ok(b)) = (&ours, &theirs) {
        assert_eq!(&a.to_json(), b);
    }
    assert_eq!(ours.is_ok(), theirs.is_ok(), "parsers disagree on {text:?}");
    if let Ok(loaded) = hke::model::load::load(text, &[]) {
        let _ = hke::ops::migrate::migrate(text, &[]);
        let _ = loaded.model;
    }
});
