"""Local tooling around the app (emulator, demo data, run, package, bench); never deployed."""
