use granit_parser::{Event, Parser};
fn main() {
    let src = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    for ev in Parser::new_from_str(&src) {
        match ev {
            Ok((e, span)) => println!(
                "{:?} @ {}:{} - {}:{} indent={:?}",
                e,
                span.start.line(),
                span.start.col(),
                span.end.line(),
                span.end.col(),
                span.indent
            ),
            Err(e) => {
                println!(
                    "ERR {} | kind={:?} | info={} | mark {}:{}",
                    e,
                    e.kind(),
                    e.info(),
                    e.marker().line(),
                    e.marker().col()
                );
                break;
            }
        }
    }
}
