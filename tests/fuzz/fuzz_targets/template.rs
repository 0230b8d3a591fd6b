//! Summary templates: any text parses or is refused, and a parsed one
//! renders with any labels without panicking.
#![no_main]

use watchpost_collector::template::Template;

libfuzzer_sys::fuzz_target!(|input: (&str, Vec<(String, String)>)| {
    let (text, labels) = input;
    if let Ok(t) = Template::parse(text) {
        let out = t.render(|name| labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
        let _ = out.len();
    }
});
