"""Station inspections: route data (portable vibration, thermography, visual), its fusion with the twin, rounds."""
