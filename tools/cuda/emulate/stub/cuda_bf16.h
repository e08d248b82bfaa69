// Empty: emu.h defines what the CUDA header would (the emulation includes emu.h first).
