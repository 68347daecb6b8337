metronome_plugin(sink_http PkgConfig::CURL PkgConfig::SODIUM)
