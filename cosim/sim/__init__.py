"""The event loop and what plugs into it: the SimPy engine that runs an epoch
(:mod:`~cosim.sim.engine`), the two contracts it calls (:mod:`~cosim.sim.contracts`:
``Controller`` drives the CAVs, ``Hook`` reacts to the simulation), the random streams of an
epoch (:mod:`~cosim.sim.seeding`), the controllers (:mod:`~cosim.sim.controllers`: IDM and
random; :mod:`~cosim.sim.sac_controller`: multi-agent SAC) and the hooks (:mod:`~cosim.sim.v2v`:
the V2V channel; :mod:`~cosim.sim.commmix`: policy sharing, RSM-MASAC Algorithms 1-2).
"""
