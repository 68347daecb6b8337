/* Umbrella header of the metronome plugin SDK: include this from a plugin. */
#ifndef METRONOME_METRONOME_H
#define METRONOME_METRONOME_H

#include <metronome/plugin.h>
#include <metronome/civil.h>
#include <metronome/cadence.h>
#include <metronome/source.h>
#include <metronome/store.h>
#include <metronome/sink.h>
#include <metronome/util.h>

#endif
