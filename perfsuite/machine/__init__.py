"""The machine: its identity and baseline key, system files, Jetson boards, NVML, telemetry meters,
the compute device and the pre-flight checks.
"""
