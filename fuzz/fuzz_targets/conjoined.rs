//! Any text as a `conjoined` column: reading never panics, and what is read, written and
//! read again is the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recalcd::conjoined;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pairs) = conjoined::parse(text) else {
        return;
    };
    let written = conjoined::write(pairs.iter().map(|(n, v)| (n.as_str(), v)));
    let again = conjoined::parse(&written);
    let kept: Vec<_> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert_eq!(again, Ok(kept), "{written}");
});
