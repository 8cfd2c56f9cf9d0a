//! The terminal while `top` runs: raw mode and the alternate screen on
//! entry; restored on every exit — normal, error (the guard's `Drop`) and
//! panic (a panic hook restores before the message is printed, so it is
//! readable and the shell is usable).

use std::io::{self, Stdout};
use std::sync::Once;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

/// Puts the terminal back: cooked mode, main screen, visible cursor.
/// Safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}

static HOOK: Once = Once::new();

/// Makes a panic restore the terminal before the previous hook prints.
fn install_panic_hook() {
    HOOK.call_once(|| chain_panic_hook(restore));
}

/// Runs `first` on every panic, then the hook that was installed before.
fn chain_panic_hook(first: fn()) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        first();
        previous(info);
    }));
}

/// The terminal in `top`'s mode; restored when dropped.
pub struct Screen {
    /// The ratatui terminal drawing on stdout.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Enters raw mode and the alternate screen.
    ///
    /// # Errors
    /// The terminal refuses (then it is restored before returning).
    pub fn enter() -> io::Result<Self> {
        install_panic_hook();
        let setup = || -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
            enable_raw_mode()?;
            execute!(io::stdout(), EnterAlternateScreen, Hide)?;
            let mut t = Terminal::new(CrosstermBackend::new(io::stdout()))?;
            t.clear()?;
            Ok(t)
        };
        match setup() {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::chain_panic_hook;

    static RESTORED: AtomicBool = AtomicBool::new(false);

    fn mark() {
        RESTORED.store(true, Ordering::SeqCst);
    }

    #[test]
    fn a_panic_runs_the_restore_before_the_message() {
        chain_panic_hook(mark);
        let r = std::panic::catch_unwind(|| panic!("top panicked (expected by this test)"));
        assert!(r.is_err());
        assert!(RESTORED.load(Ordering::SeqCst), "the hook did not restore");
    }
}
