metronome_plugin(store_sqlite PkgConfig::SQLITE PkgConfig::ZSTD Threads::Threads)
