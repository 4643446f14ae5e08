//! Hash routing: `#network`, `#channels`, `#tasks`, `#governance`,
//! `#economy`, `#tools`, `#upgrades`, `#agent`. Hash routes need no server support
//! (the rendezvous serves one static page) and keep `?profile=` intact.

use leptos::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Route {
    Network,
    Channels,
    Tasks,
    Governance,
    Economy,
    Tools,
    Upgrades,
    Agent,
}

impl Route {
    pub const ALL: [Route; 8] = [
        Route::Network,
        Route::Channels,
        Route::Tasks,
        Route::Governance,
        Route::Economy,
        Route::Tools,
        Route::Upgrades,
        Route::Agent,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Route::Network => "network",
            Route::Channels => "channels",
            Route::Tasks => "tasks",
            Route::Governance => "governance",
            Route::Economy => "economy",
            Route::Tools => "tools",
            Route::Upgrades => "upgrades",
            Route::Agent => "agent",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Route::Network => "Network",
            Route::Channels => "Channels",
            Route::Tasks => "Tasks",
            Route::Governance => "Governance",
            Route::Economy => "Economy",
            Route::Tools => "Tools",
            Route::Upgrades => "Upgrades",
            Route::Agent => "Agent",
        }
    }

    /// The route for a `location.hash`; unknown or empty → Network.
    pub fn from_hash(hash: &str) -> Route {
        let h = hash.trim_start_matches('#');
        Route::ALL.into_iter().find(|r| r.slug() == h).unwrap_or(Route::Network)
    }
}

fn current() -> Route {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    Route::from_hash(&hash)
}

/// The current route, following `hashchange` (links, back/forward).
pub fn use_route() -> ReadSignal<Route> {
    let (route, set_route) = signal(current());
    let handle = window_event_listener(leptos::ev::hashchange, move |_| set_route.set(current()));
    on_cleanup(move || handle.remove());
    route
}
