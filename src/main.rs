fn main() -> std::process::ExitCode {
    brama::cli::main()
}
