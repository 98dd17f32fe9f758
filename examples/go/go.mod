module ringmaster.example/agentclient

go 1.19
