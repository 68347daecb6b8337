pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
metronome_plugin(store_postgres PkgConfig::PQ)
