/// Which communicator a command runs on, decided in one place so that no command names MPI.
///
/// Today that is always the MPI world: under mpirun the job's ranks, started directly a world
/// of one. Tests that want several ranks without mpirun build a `LocalCommunicator` instead.
public enum CommunicatorFactory {
    public static func world() -> Communicator { MPICommunicator.world }
}
