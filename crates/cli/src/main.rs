//! The `xdpwall` command: thin `main`, one module per subcommand.

mod capture_file;
mod cli;
mod cmd;
mod config;
mod control;
mod event_out;
mod exit;
mod logging;
mod metrics_server;
mod output;
mod service;
mod top;

use clap::{CommandFactory, Parser};

use crate::cli::{BenchCmd, Cli, Command};

fn main() {
    // Die quietly on a closed pipe (`xdpwall man | head`), like other CLI tools,
    // instead of panicking in println!.
    // SAFETY: setting a signal disposition to SIG_DFL at start-up, before any
    // threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    logging::init();
    let result = match cli.command {
        Command::Demo { rounds } => cmd::demo::demo(rounds),
        Command::Check { config } => cmd::check::check(&config),
        Command::Run {
            config,
            iface,
            mode,
            force,
            interval,
            events,
            busy_poll,
            metrics,
        } => cmd::run::run(&cmd::run::RunArgs {
            config,
            iface,
            mode: mode.map(Into::into),
            force,
            interval,
            events,
            busy_poll,
            metrics,
        }),
        Command::Stats { iface, json } => cmd::stats::stats(iface, json),
        Command::Reload { iface } => cmd::reload::reload(iface),
        Command::Top {
            iface,
            interval,
            force,
        } => top::top(&top::TopArgs {
            iface,
            interval_ms: interval,
            force,
        }),
        Command::Replay {
            config,
            capture,
            json,
            reference,
        } => cmd::replay::replay(&config, &capture, json, reference),
        Command::Gen(opts) => cmd::gen::gen(&opts),
        Command::Bench(BenchCmd::Classify {
            rules,
            set_entries,
            repeat,
            runs,
            json,
            svg,
        }) => cmd::bench::classify(&cmd::bench::ClassifyArgs {
            rules,
            set_entries,
            repeat,
            runs,
            json,
            svg,
        }),
        Command::Bench(BenchCmd::Transport {
            events,
            reps,
            producers,
            snaplen,
            transport,
            wakeup,
            poll,
            buffer_mib,
            drain_reps,
            json,
            svg,
            from_json,
        }) => cmd::bench::transport(&cmd::bench::TransportArgs {
            drain_reps,
            events,
            reps,
            producers,
            snaplens: snaplen,
            transports: transport,
            wakeups: wakeup,
            polls: poll,
            buffer_mib,
            json,
            svg,
            from_json,
        }),
        Command::Bench(BenchCmd::Dataplane {
            reps,
            window,
            warmup,
            cpus,
            size,
            rules,
            set_entries,
            bpf_stats,
            rows,
            json,
            svg,
            from_json,
        }) => cmd::bench::dataplane(&cmd::bench::DataplaneArgs {
            reps,
            window,
            warmup,
            cpus,
            size,
            rules,
            set_entries,
            bpf_stats,
            rows,
            json,
            svg,
            from_json,
        }),
        Command::Bench(BenchCmd::Reload {
            entries,
            timed,
            reloads,
            traffic_entries,
            rate,
            json,
            svg,
        }) => cmd::bench_reload::reload(&cmd::bench_reload::ReloadArgs {
            entries,
            timed,
            reloads,
            traffic_entries,
            rate,
            json,
            svg,
        }),
        Command::Bench(BenchCmd::Ratelimit {
            rates,
            factor,
            seconds,
        }) => cmd::bench_ratelimit::ratelimit(&cmd::bench_ratelimit::RateArgs {
            rates,
            factor,
            seconds,
        }),
        Command::Bench(BenchCmd::SynthRules { count, seed }) => {
            print!("{}", xdpwall_rules::synth::mixed_rules_toml(count, seed));
            Ok(())
        }
        Command::Bench(BenchCmd::SynthSet { entries, seed }) => {
            print!("{}", xdpwall_rules::synth::set_file_lines(entries, seed));
            Ok(())
        }
        Command::Capture {
            iface,
            write,
            count,
            snaplen,
            transport,
            busy_poll,
            force,
        } => cmd::capture::capture(&cmd::capture::CaptureArgs {
            iface,
            write,
            count,
            snaplen,
            perfbuf: matches!(transport, cli::TransportArg::Perfbuf),
            busy_poll,
            force,
        }),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "xdpwall",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(anyhow::Error::from),
        Command::Detach { iface, force } => cmd::detach::detach(&iface, force),
    };
    if let Err(e) = result {
        let code = exit::code_of(&e);
        if code == 2 {
            eprintln!("{e}");
        } else {
            eprintln!("xdpwall: {e:#}");
        }
        std::process::exit(code);
    }
}
