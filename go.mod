module github.com/riffle-streams/riffle

go 1.26.0
