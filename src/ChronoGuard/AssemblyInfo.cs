// Locals are always written before they are read on our paths; skipping the zero-init of stackalloc
// buffers is measurable on the per-request path (the same choice YARP and Kestrel make).
[module: System.Runtime.CompilerServices.SkipLocalsInit]
