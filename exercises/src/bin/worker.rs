//! The helper process of chapter 2's exercises; see `course::worker`.

fn main() -> std::process::ExitCode {
    course::worker::main()
}
