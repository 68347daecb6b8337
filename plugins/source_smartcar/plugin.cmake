metronome_plugin(source_smartcar PkgConfig::CURL PkgConfig::JANSSON)
