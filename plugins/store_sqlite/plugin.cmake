metronome_plugin(store_sqlite PkgConfig::SQLITE Threads::Threads)
